"""Temperature populations: runs that differ only in `loss.temperature`, trained as one
vmapped program (`sweep.population=True`).

Every member starts from the same initial state (the config's seed) and sees the
same batches, exactly as separate runs with that seed would; each member's update
is `step.update`, vmapped over the temperatures (`population_step`). The loop,
checkpoints and evaluation are a single run's (`train.train_loop`, `train.finish`),
on the stacked state.
"""

import time

import jax
import jax.numpy as jnp

from contrastive import build
from contrastive import paths
from contrastive import step as step_lib
from contrastive import train
from contrastive.data import pipeline


def population_step(
  states: step_lib.TrainState, data: pipeline.DeviceData, root_key, setup: step_lib.Setup,
  temperatures,
  diagnose=True,
  loss_scale=None,
  data_seed=None,
):  # fmt: skip
  """One step of a population of models that differ only in their temperature.

  `states` holds P models stacked on a leading axis (all at the same step) and
  `temperatures` [P] their temperatures. The batch is built once and shared, and
  the P updates run as one vmapped program, so member i follows exactly the run
  `step.train_step` makes with `loss.temperature = temperatures[i]` and the same seed.
  `diagnose` is shared by the members (unbatched, so the diagnostics stay skipped);
  so are `loss_scale` (`step.update`'s) and `data_seed` (`step.batch`'s).

  Returns:
    (states, metrics), every metric with a leading axis of size P.
  """
  views = step_lib.batch(data, root_key, states.step[0], setup, data_seed)
  return jax.vmap(
    lambda st, t: step_lib.update(st, views, root_key, setup, t, diagnose, loss_scale)
  )(states, temperatures)


def jit_population_step(setup: step_lib.Setup, temperatures):
  """`population_step` jitted for `setup` and `temperatures`, donating the old states:
  (states, data, root_key) -> (states, metrics), like `step.jit_train_step`."""
  jitted = jax.jit(
    lambda st, data, root, taus, scale, seed, diagnose: population_step(
      st, data, root, setup, taus, diagnose, scale, seed
    ),
    donate_argnums=0,
    compiler_options=step_lib.compiler_options(setup.mesh),
  )
  return step_lib.BoundStep(jitted, temperatures, *step_lib.bound_arguments(setup))


def stack_population(state: step_lib.TrainState, size: int) -> step_lib.TrainState:
  """`size` copies of `state` stacked on a leading axis: a population's start."""
  return jax.tree.map(lambda x: jnp.stack([x] * size), state)


def without_temperature(config) -> dict:
  """`config` as a dict without loss.temperature and the sweep section: what the
  members of a temperature population share."""
  d = config.to_dict()
  d["loss"].pop("temperature")
  d.pop("sweep", None)
  return d


def train_population(config, workdir: str, members, *, lock=None) -> list[dict]:
  """Trains runs that differ only in `loss.temperature` as one vmapped program.

  Every member starts from the same initial state (the config's seed) and sees
  the same batches, exactly as separate runs with that seed would; each member's
  update is `step.update`, vmapped over the temperatures (`population_step`).

  Args:
    config: the shared config (its own loss.temperature is not used).
    workdir: directory of the population's checkpoint (the stacked state).
    members: (run directory, run config) pairs; the configs may differ from
      `config` in loss.temperature only. Each run directory receives that
      member's metrics.jsonl, TensorBoard events and results.json.
    lock: as `train_and_evaluate`'s, on `workdir`.

  Returns:
    The members' results dicts, in order.
  """
  t_start = time.perf_counter()
  if any(without_temperature(c) != without_temperature(config) for _, c in members):
    raise ValueError("A population's members may differ from its config in loss.temperature only.")
  run = build.build_run(config)  # first: a missing dataset stops before the workdir exists
  lock = lock or train.process_lock(workdir)
  try:
    return _train_population(config, workdir, members, run, t_start)
  finally:
    lock.release()


def _train_population(config, workdir, members, run: build.Run, t_start) -> list[dict]:
  times = {"setup": round(time.perf_counter() - t_start, 1)}
  # The float dtype the separate runs' Python-float temperatures take.
  temperatures = jnp.asarray([c.loss.temperature for _, c in members])
  size = len(members)
  states = stack_population(run.state, size)
  step_fn = jit_population_step(run.setup, temperatures)
  dirs = [d for d, _ in members]
  states, loss = train.train_loop(
    config, workdir, run, states, step_fn, dirs, times, [c.loss.temperature for _, c in members]
  )
  return [
    train.finish(
      member_config,
      member_dir,
      run,
      jax.tree.map(lambda x, i=i: x[i], states),
      loss[i],
      t_start,
      times,
      population_size=size,
      population_member=i,
      population_workdir=paths.absolute(workdir),
    )
    for i, (member_dir, member_config) in enumerate(members)
  ]
