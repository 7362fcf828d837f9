"""Training a run: the loop (logging, checkpoints, preemption), its evaluation and
`train_and_evaluate(config, workdir)`.

`build.build_run` builds what a run needs, `step` holds the compiled step, and the
loop here drives it from the latest checkpoint to the last step: it logs every
`train.log_every` steps (each logged step written one log later, `DeferredLog`, so
the host never waits on the device), saves checkpoints (never a diverged state),
stops cleanly on SIGTERM, then evaluates (`evaluate.evaluate_state`) and writes
results.json. Temperature populations drive the same loop (`population`).
"""

import itertools
import json
import os
import time

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from contrastive import build
from contrastive import checkpoint
from contrastive import evaluate
from contrastive import locking
from contrastive import logs
from contrastive import paths
from contrastive import provenance
from contrastive import step as step_lib
from contrastive import temperature
from contrastive.data import latent
from contrastive.data import pipeline
from contrastive.data import streaming


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or inf; the message names the step."""


class Preempted(SystemExit):
  """SIGTERM or SIGINT arrived; a checkpoint was saved and the run stopped cleanly: exit
  0 after SIGTERM (a preemption, which the scheduler reruns), 130 after Ctrl-C (the
  shell's code for it, so a script running several commands stops too)."""

  def __init__(self, message: str, code: int = 0):
    print(message)
    super().__init__(code)


def check_finite(step, step_metrics):
  """Raises NonFiniteLossError if the step's loss (any member's) is NaN or inf."""
  loss = np.asarray(step_metrics["loss"])
  if not np.all(np.isfinite(loss)):
    shown = float(loss) if loss.ndim == 0 else loss.tolist()
    raise NonFiniteLossError(
      f"loss is {shown} at step {step}; training stopped (the last checkpoint before it is kept)."
    )


def finish(config, workdir, run: build.Run, state, loss, t_start, times, **extra) -> dict:
  """Evaluates `state` and writes WORKDIR/results.json (process 0); returns the results.

  `times` holds the run's phases so far (`train_loop`); the evaluation's is added,
  so results.json says where the wall time went (`time_s`).
  """
  t_eval = time.perf_counter()
  lead = jax.process_index() == 0
  if lead:
    print(
      f"evaluating: kNN and a {config.eval.linear_epochs}-epoch linear probe on "
      f"{run.data.train.num_examples:,} + {run.data.test.num_examples:,} images",
      flush=True,
    )
  evaluation = evaluate.evaluate_state(config, run, state)
  times = {**times, "evaluate": round(time.perf_counter() - t_eval, 1)}
  if lead:
    print(f"evaluated in {times['evaluate']:.1f} s", flush=True)
  results = {
    **evaluation,
    **temperature.results(state),
    **({"loss_scale": run.setup.loss_scale} if run.setup.loss_scale != 1.0 else {}),
    "final_loss": loss,
    "steps": run.num_steps,
    "train_examples": run.data.train.num_examples,
    "test_examples": run.data.test.num_examples,
    **extra,
    "wall_time_s": round(time.perf_counter() - t_start, 1),
    "time_s": times,
    "config": config.to_dict(),
  }
  if jax.process_index() == 0:
    # Each segment of the run (a resumed run has several): code, libraries, device.
    results["provenance"] = provenance.finish(extra.get("population_workdir", workdir))
    paths.write_text(
      paths.path(workdir, "results.json"), json.dumps(results, indent=1, default=str)
    )
  return results


def train_and_evaluate(config, workdir: str, *, lock=None) -> dict:
  """Trains as `config` says, evaluates, and writes WORKDIR/results.json.

  Resumes from the latest checkpoint in WORKDIR/checkpoints if there is one. On
  several processes (after `jax.distributed.initialize`), each reads only its
  shard of the data; process 0 writes the logs and results.

  Args:
    config: the run's config.
    workdir: its directory.
    lock: the `locking.WorkdirLock` on `workdir` if the caller took it already (a
      sweep claims a run before loading its data); taken here otherwise. Released
      when the run ends.

  Returns:
    The results dict (also written to results.json).
  """
  t_start = time.perf_counter()
  run = build.build_run(config)  # first: a missing dataset stops before the workdir exists
  lock = lock or process_lock(workdir)
  try:
    times = {"setup": round(time.perf_counter() - t_start, 1)}
    step_fn = step_lib.jit_train_step(run.setup)
    state, loss = train_loop(config, workdir, run, run.state, step_fn, [workdir], times)
    return finish(config, workdir, run, state, loss[0], t_start, times)
  finally:
    lock.release()


def process_lock(workdir: str):
  """Process 0's lock on `workdir` (`locking.WorkdirLock`); a no-op elsewhere."""
  if jax.process_index() != 0:
    return locking.NoLock()
  return locking.WorkdirLock(workdir)


def train_loop(config, workdir, run: build.Run, state, step_fn, metric_dirs, times,
               temperatures=None):  # fmt: skip
  """Runs steps from the latest checkpoint in WORKDIR/checkpoints to the last.

  `state` is one model's or a population's (stacked, one member per entry of
  `metric_dirs`, which receive each member's metrics). Adds to `times` (seconds):
  "first_step" (compilation, or loading it from the cache, and one step) and
  "train" (the other steps, with logging and checkpoints). Process 0 prints the
  run's `describe` line (`temperatures`: a population's) and where it starts from.

  Returns:
    (state, [last logged loss of each member]).
  """
  ckpt = checkpoint.Checkpointer(
    os.path.join(workdir, "checkpoints"),
    every=config.train.checkpoint_every,
    keep=config.train.checkpoints_to_keep,
  )
  state = ckpt.restore_latest(state)
  start = int(np.asarray(state.step).reshape(-1)[0])
  num_steps = run.num_steps
  lead = jax.process_index() == 0
  if lead:
    provenance.begin(workdir, start)
    print(build.describe(config, run, temperatures, workdir))
    where = f"resuming from step {start} ({ckpt.directory}/{start})"
    print(where if start else "starting from scratch", flush=True)
  writers = [
    logs.MetricWriter(d, tensorboard=config.train.tensorboard, resume_step=start, enabled=lead)
    for d in metric_dirs
  ]
  progress = logs.Progress(num_steps, start=start, enabled=lead)
  log = DeferredLog(writers, progress, config.data.batch_size, start)
  stop = checkpoint.StopRequest()
  t_loop = time.perf_counter()
  times.update(first_step=0.0, train=0.0)
  inputs = _inputs(run, start)
  monitor_every = config.eval.get("monitor_every", 0)
  monitor = evaluate.knn_monitor(config, run) if monitor_every else None
  try:
    for step in range(start, num_steps):
      done = step + 1
      monitored = monitor is not None and done % monitor_every == 0
      logged = done % config.train.log_every == 0 or done == num_steps or monitored
      state, step_metrics = step_fn(state, next(inputs), run.root, diagnose=logged)
      if step == start:
        jax.block_until_ready(step_metrics["loss"])
        times["first_step"] = round(time.perf_counter() - t_loop, 1)
        progress.restart(done)  # the ETA from the steps' rate, not the compilation's
      if monitored:  # the kNN monitor, in this step's row, written now; not timed as steps
        log.flush()
        jax.block_until_ready(step_metrics)
        ready = time.perf_counter()
        log.hold(done, {**step_metrics, "knn_monitor": monitor(state)})
        log.flush(ready)
      elif logged:
        log.hold(done, step_metrics)
      if done % ckpt.every == 0 or stop.requested or done == num_steps:
        # Never save a diverged state: the last good checkpoint must survive a NaN.
        check_finite(done, step_metrics)
        log.flush()  # the logged rows up to a checkpoint go out with it
        ckpt.save(done, state)
        for w in writers:  # a bucket's logs are uploaded at each checkpoint
          w.flush()
      if stop.requested and done < num_steps:
        raise Preempted(
          f"{stop.signal} received: saved a checkpoint at step {done} in "
          f"{workdir}/checkpoints; rerun the same command to resume.",
          130 if stop.signal == "SIGINT" else 0,
        )
    log.flush()
    if num_steps == start:  # resumed after the last step: read back the last loss
      log.loss = [w.last_value("loss") for w in writers]
  finally:
    times["train"] = round(time.perf_counter() - t_loop - times["first_step"], 1)
    stop.restore()
    progress.close()
    for w in writers:
      w.close()
    ckpt.close()
  return state, log.loss


class DeferredLog:
  """A logged step's metrics, held until the next log (or a checkpoint, a kNN monitor,
  the end) writes them: fetching them at once would make the host wait for the
  device every log (JAX's training cookbook logs the previous step's metrics).

  `loss` is each member's last written loss (NaN before the first write).
  """

  def __init__(self, writers, progress, batch_size: int, start: int):
    self.writers, self.progress, self.batch_size = writers, progress, batch_size
    self.pending = None
    self.last = (start, time.perf_counter())  # the last write's step and time
    self.loss = [float("nan")] * len(writers)

  def hold(self, step: int, step_metrics) -> None:
    """Writes what is held, then holds `step`'s metrics."""
    self.flush()
    self.pending = (step, step_metrics)

  def flush(self, ready=None) -> None:
    """Writes what is held (nothing if nothing is), its images/s timed to `ready`
    (when its metrics were ready) or to now."""
    if self.pending is None:
      return
    step = self.pending[0]
    self.loss = _log(self.writers, self.progress, self.pending, self.last, self.batch_size, ready)
    self.last, self.pending = (step, time.perf_counter()), None


def _inputs(run: build.Run, start: int):
  """What each step from `start` takes as its data: the device-held training split
  (the step builds its batch; the latent test-bed's too), or a streamed dataset's
  next batch of host crops as one global array over the mesh (each process gives its
  share)."""
  if isinstance(run.data.train, pipeline.DeviceData | latent.LatentData):
    yield from itertools.repeat(run.data.train)
  sharding = NamedSharding(run.setup.mesh, P("data"))
  for batch in streaming.train_batches(
    run.data.train,
    batch_size=run.setup.batch_size,
    config=run.setup.augment,
    seed=run.setup.data_seed,
    start_step=start,
  ):
    yield jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def _log(writers, progress, pending, last_log, batch_size, ready=None) -> list[float]:
  """Writes a logged step's metrics, member i's to writers[i]; returns the losses.

  The images/s since `last_log` are timed to `ready` (when the step's metrics were
  ready), or to now. Raises NonFiniteLossError on a NaN/inf loss.
  """
  step, step_metrics = pending
  values = jax.device_get(step_metrics)
  check_finite(step, values)
  histograms = {}
  if temperature.SAMPLE_TEMPERATURES in values:  # not a scalar: TensorBoard's histogram only
    histograms[temperature.SAMPLE_TEMPERATURES] = values.pop(temperature.SAMPLE_TEMPERATURES)
  elapsed = (ready or time.perf_counter()) - last_log[1]
  rate = (step - last_log[0]) * batch_size / max(elapsed, 1e-9)
  member_losses = []
  for i, writer in enumerate(writers):
    scalars = {k: float(np.reshape(v, (len(writers),))[i]) for k, v in values.items()}
    scalars["images_per_s"] = rate
    writer.write(step, scalars, histograms)
    member_losses.append(scalars["loss"])
  shown = " ".join(f"{x:.4f}" for x in member_losses)
  progress.update(step, f"loss {shown} | {rate:.0f} img/s")
  return member_losses
