"""Training: the state, the sharded step, evaluation of a state and `train_and_evaluate`.

One pure jitted step `(state, data) -> (state, metrics)` over a ('data',) device
mesh. The step builds its own batch on the device (`pipeline.train_batch`),
constrains it to be sharded over 'data', and computes the loss on the *global*
batch: XLA inserts the all-gathers that give every anchor the negatives of every
device, so there is no pmap, no pmean and no hand-written gather. BatchNorm
statistics are likewise those of the global batch. The loss is the objective's
(`contrastive.objective`), the update the optimiser's (`contrastive.optim`).

Randomness: one root key from `config.seed`; augmentation uses
fold_in(fold_in(root, 1), step) and the SWD projections fold_in(fold_in(root, 2),
step), so a resumed run draws exactly the same randomness.

The public seams, for sweeps, benchmarks, notebooks and tests: `build_run(config)`
(everything a run builds before its first step), `jit_train_step` /
`jit_population_step`; `evaluate.evaluate_state(config, run, state)` evaluates a state.
"""

import dataclasses
import itertools
import json
import os
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np
import optax

from contrastive import checkpoint
from contrastive import evaluate
from contrastive import logs
from contrastive import models
from contrastive import numerics
from contrastive import objective
from contrastive import optim
from contrastive import paths
from contrastive import provenance
from contrastive.data import augment
from contrastive.data import datasets
from contrastive.data import objects
from contrastive.data import pipeline
from contrastive.data import streaming


@flax.struct.dataclass
class TrainState:
  """Everything a step changes: params, BN statistics, optimizer, memory bank, step."""

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  bank: jax.Array | None  # [num_train, out_dim] NPID memory bank, or None
  # A learned global temperature (loss.temperature_learned="global"): log tau and its
  # Adam state; None otherwise.
  log_temperature: jax.Array | None = None
  temperature_opt_state: Any = None
  # A per-sample temperature (loss.temperature_learned="per_sample"): a row per
  # training instance, `objective.init_sample_temperatures`; None otherwise.
  sample_temperature: Any = None
  # The online linear probe (eval.online_probe): a classifier on the encoder's
  # stop-gradient features, {"w", "b"}, and its optimizer state; None otherwise.
  probe_params: Any = None
  probe_opt_state: Any = None


# ----------------------------------------------------------------------------------
# State, step.


# The step metric holding every per-sample temperature: logged as a histogram.
SAMPLE_TEMPERATURES = "sample_temperatures"


@dataclasses.dataclass(frozen=True)
class Setup:
  """What the step needs besides the state: the static objects it closes over."""

  model: models.ContrastiveModel
  tx: optax.GradientTransformation
  schedule: Any
  loss: Any  # the frozen loss config
  augment: augment.AugmentConfig
  batch_size: int
  data_seed: int
  bank_momentum: float
  mesh: jax.sharding.Mesh
  temperature_schedule: Any = None  # step -> tau (`objective.temperature_schedule`)
  temperature_tx: Any = None  # the learned temperature's optimizer, or None
  probe_tx: Any = None  # the online linear probe's optimizer, or None
  probe_classes: int = 0  # the online probe's number of classes
  # The loss's multiplier: loss.scale, or the one that matches NT-Xent's gradient norm
  # at initialisation (loss.scale_reference="nt_xent"; `calibrate_loss_scale`).
  loss_scale: float = 1.0


def gradient_norms(setup: Setup, loss_cfg, state: TrainState, data, root_key, steps=(0,)):
  """The norms of the gradient, w.r.t. the parameters of `state`, of the loss `loss_cfg`
  names (unscaled) on the augmented batch of each of `steps` (the trainer's own batches
  and keys); one compiled program for all of them."""

  @jax.jit
  def norm(state, data, step):
    batch = _batch(data, root_key, step, setup)
    key = jax.random.fold_in(jax.random.fold_in(root_key, 2), step)

    def loss_fn(params):
      _, z1, z2, _ = _forward_views(setup, params, state.batch_stats, batch)
      return objective.loss(loss_cfg, z1, z2, indices=batch["index"], bank=state.bank, key=key,
                            mesh=setup.mesh)  # fmt: skip

    return optax.tree.norm(jax.grad(loss_fn)(state.params))

  return [float(norm(state, data, jnp.asarray(s, jnp.int32))) for s in steps]


def calibrate_loss_scale(config, setup: Setup, state: TrainState, data, root_key) -> float:
  """The multiplier that gives the configured loss NT-Xent's gradient norm at
  initialisation (loss.scale_reference="nt_xent"): ||grad NT-Xent|| / ||grad loss||, at
  `state`'s parameters on the first batch, NT-Xent at loss.scale_reference_temperature
  in SimCLR's layout. Chen et al.'s generalized losses have gradients about tau / d of
  NT-Xent's (their 1/d alignment term), so under one SGD learning rate they would
  train at a fraction of its step size; their notebooks' `loss_scaling` is this knob.
  Deterministic in the config and seed, so a resumed run computes the same scale."""
  reference = ml_collections.ConfigDict(config.loss.to_dict())
  reference.update(name="contrastive", layout="simclr", block_size=None,
                   temperature=config.loss.scale_reference_temperature)  # fmt: skip
  (ours,) = gradient_norms(setup, config.loss, state, data, root_key)
  (target,) = gradient_norms(setup, reference, state, data, root_key)
  return target / ours


def create_state(setup: Setup, key, image_shape, num_train: int) -> TrainState:
  """Initial state, replicated over the mesh."""
  k_init, k_bank = jax.random.split(key)
  variables = setup.model.init(k_init, jnp.zeros((2,) + tuple(image_shape)), train=False)
  if setup.model.encoder.dtype == jnp.float64:  # exactness checks: float64 throughout
    variables = jax.tree.map(lambda x: x.astype(jnp.float64), variables)
  params = variables["params"]
  bank = None
  if objective.uses_bank(setup.loss):
    bank = numerics.l2_normalize(jax.random.normal(k_bank, (num_train, setup.model.head.out_dim)))
  log_tau = tau_opt = None
  if setup.temperature_tx is not None:
    log_tau = jnp.log(jnp.asarray(setup.loss.temperature, jnp.float32))
    tau_opt = setup.temperature_tx.init(log_tau)
  sample = None
  if setup.loss.get("temperature_learned", "none") == "per_sample":
    sample = objective.init_sample_temperatures(setup.loss, num_train)
  probe = probe_opt = None
  if setup.probe_tx is not None:
    width = jax.eval_shape(
      lambda: setup.model.apply(variables, jnp.zeros((1,) + tuple(image_shape)), train=False)
    )[0].shape[-1]
    probe = {
      "w": jnp.zeros((width, setup.probe_classes), jnp.float32),
      "b": jnp.zeros((setup.probe_classes,), jnp.float32),
    }
    probe_opt = setup.probe_tx.init(probe)
  state = TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=setup.tx.init(params),
    bank=bank,
    log_temperature=log_tau,
    temperature_opt_state=tau_opt,
    sample_temperature=sample,
    probe_params=probe,
    probe_opt_state=probe_opt,
  )
  return jax.device_put(state, NamedSharding(setup.mesh, P()))


def make_mesh():
  """A 1-D ('data',) mesh over every device, with automatic sharding propagation."""
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def _batch(data, root_key, step, setup: Setup) -> dict:
  """The augmented global batch of `step`, sharded over the mesh's 'data' axis.

  `data` is the training split on the device (`pipeline.DeviceData`: the step
  gathers and augments its batch), or a streamed dataset's batch of host crops
  ({"views": uint8 [B, 2, S, S, 3], "index", "label"}: the step colours them with
  the keys the device path would use).
  """
  key = jax.random.fold_in(root_key, 1)
  if isinstance(data, pipeline.DeviceData):
    batch = pipeline.train_batch(
      data, key, step, seed=setup.data_seed, batch_size=setup.batch_size, config=setup.augment
    )
  else:
    v1, v2 = augment.photometric_batch(
      jax.random.fold_in(key, step), data["views"], setup.augment, data["index"]
    )
    batch = {"view1": v1, "view2": v2, "index": data["index"], "label": data["label"]}
  return jax.lax.with_sharding_constraint(batch, NamedSharding(setup.mesh, P("data")))


def _forward_views(setup: Setup, params, batch_stats, batch):
  """Both views through the model in training mode, as one batch (BatchNorm statistics
  of the pair): (encoder features [2B, F], z1 [B, D], z2 [B, D], new batch_stats)."""
  (h, z), updates = setup.model.apply(
    {"params": params, "batch_stats": batch_stats},
    jnp.concatenate([batch["view1"], batch["view2"]]),
    train=True,
    mutable=["batch_stats"],
  )
  z1, z2 = jnp.split(z, 2)
  return h, z1, z2, updates["batch_stats"]


def _update(state: TrainState, batch: dict, root_key, setup: Setup, temperature=None,
            diagnose=True):  # fmt: skip
  """One optimisation step of `state` on `batch`: (state, metrics).

  `diagnose` (a bool, possibly traced) says whether to compute the similarity
  diagnostics (`objective.diagnostics`); when false they are NaN and cost nothing.
  """
  loss_key = jax.random.fold_in(jax.random.fold_in(root_key, 2), state.step)
  if setup.temperature_schedule is not None:
    temperature = setup.temperature_schedule(state.step)
  learned = state.log_temperature is not None
  sample = state.sample_temperature
  if sample is not None:  # tau_i of each anchor's instance
    temperature = objective.anchor_temperatures(sample, batch["index"])

  def loss_fn(params, log_tau):
    tau = jnp.exp(log_tau) if learned else temperature
    h, z1, z2, batch_stats = _forward_views(setup, params, state.batch_stats, batch)
    value = objective.loss(
      setup.loss,
      z1,
      z2,
      indices=batch["index"],
      bank=state.bank,
      key=loss_key,
      temperature=tau,
      mesh=setup.mesh,
    )
    if setup.loss_scale != 1.0:
      value = setup.loss_scale * value
    return value, (batch_stats, z1, z2, h)

  (loss, (batch_stats, z1, z2, h)), (grads, tau_grad) = jax.value_and_grad(
    loss_fn, argnums=(0, 1), has_aux=True
  )(state.params, state.log_temperature if learned else jnp.zeros(()))
  if learned:
    temperature = jnp.exp(state.log_temperature)
  stats = _diagnostics(setup, z1, z2, batch["index"], state.bank, temperature, diagnose)
  updates, opt_state = setup.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  log_tau, tau_opt = state.log_temperature, state.temperature_opt_state
  if learned:
    tau_update, tau_opt = setup.temperature_tx.update(tau_grad, tau_opt, log_tau)
    log_tau = objective.clip_log_temperature(setup.loss, log_tau + tau_update)
  sample_metrics = {}
  if sample is not None:  # before the bank moves: the negatives the loss saw
    sample = objective.update_sample_temperatures(
      setup.loss, sample, z1, z2, indices=batch["index"], bank=state.bank
    )
    sample_metrics = {
      "sample_temperature_mean": jnp.mean(sample["tau"]),
      "sample_temperature_std": jnp.std(sample["tau"]),
      SAMPLE_TEMPERATURES: sample["tau"],  # a histogram in TensorBoard, at logged steps
    }
  bank = state.bank
  if bank is not None:
    bank = objective.update_bank(bank, batch["index"], z1, z2, setup.bank_momentum)
  probe, probe_opt, probe_metrics = state.probe_params, state.probe_opt_state, {}
  if probe is not None:
    labels = jnp.concatenate([batch["label"], batch["label"]])
    probe, probe_opt, probe_metrics = _probe_update(setup, probe, probe_opt, h, labels)
  new_state = state.replace(
    step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state, bank=bank,
    log_temperature=log_tau, temperature_opt_state=tau_opt, sample_temperature=sample,
    probe_params=probe, probe_opt_state=probe_opt,
  )  # fmt: skip
  step_metrics = {
    "loss": loss,
    "learning_rate": jnp.asarray(setup.schedule(state.step)),
    "grad_norm": optax.tree.norm(grads),
    **stats,
    **sample_metrics,
    **probe_metrics,
  }
  return new_state, step_metrics


def _probe_update(setup: Setup, probe, opt_state, features, labels):
  """One step of the online linear probe (SimCLR's code trains one alongside): a
  softmax classifier on the encoder's features of both views, behind a stop-gradient,
  with its own optimizer; the backbone's update never sees it. Returns (probe,
  opt_state, {"probe_loss", "probe_accuracy"}) on this batch's training views."""
  features = jax.lax.stop_gradient(features).astype(jnp.float32)

  def loss_fn(p):
    logits = features @ p["w"] + p["b"]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels)), logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(probe)
  updates, opt_state = setup.probe_tx.update(grads, opt_state, probe)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
  return (
    optax.apply_updates(probe, updates),
    opt_state,
    {
      "probe_loss": loss,
      "probe_accuracy": accuracy,
    },
  )


def _diagnostics(setup: Setup, z1, z2, indices, bank, temperature, diagnose):
  """`objective.diagnostics` where `diagnose` holds, NaN otherwise, in one program.

  A traced `diagnose` becomes a `lax.cond`, so the unlogged steps skip the work
  (the penalty entropy's extra gradient over the batch's similarities); it must
  not be batched under a population's vmap, or both branches would run.
  """

  def compute():
    return objective.diagnostics(
      setup.loss, z1, z2, indices=indices, bank=bank, temperature=temperature
    )

  def skip():
    shapes = jax.eval_shape(compute)
    return jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)

  if isinstance(diagnose, bool):
    return compute() if diagnose else skip()
  return jax.lax.cond(diagnose, compute, skip)


def train_step(state: TrainState, data: pipeline.DeviceData, root_key, setup: Setup,
               diagnose=True):  # fmt: skip
  """One step on the global batch: (state, data) -> (state, metrics)."""
  batch = _batch(data, root_key, state.step, setup)
  return _update(state, batch, root_key, setup, diagnose=diagnose)


def population_step(
  states: TrainState, data: pipeline.DeviceData, root_key, setup: Setup, temperatures,
  diagnose=True,
):  # fmt: skip
  """One step of a population of models that differ only in their temperature.

  `states` holds P models stacked on a leading axis (all at the same step) and
  `temperatures` [P] their temperatures. The batch is built once and shared, and
  the P updates run as one vmapped program, so member i follows exactly the run
  `train_step` makes with `loss.temperature = temperatures[i]` and the same seed.
  `diagnose` is shared by the members (unbatched, so the diagnostics stay skipped).

  Returns:
    (states, metrics), every metric with a leading axis of size P.
  """
  batch = _batch(data, root_key, states.step[0], setup)
  return jax.vmap(lambda st, t: _update(st, batch, root_key, setup, t, diagnose))(
    states, temperatures
  )


def jit_train_step(setup: Setup):
  """`train_step` jitted for `setup`, donating the old state.

  The temperature is an argument of the compiled program, not a constant in it, so
  runs that differ only in `loss.temperature` compile to the same program: with a
  persistent compilation cache (`enable_compilation_cache`) a sweep's later runs
  load it instead of compiling. So is `diagnose`: logged and unlogged steps share
  one program.
  """
  jitted = jax.jit(
    lambda st, data, root, tau, diagnose: _update(
      st, _batch(data, root, st.step, setup), root, setup, tau, diagnose
    ),
    donate_argnums=0,
  )
  # The dtype a Python-float temperature takes in the loss (as a population's).
  return BoundStep(jitted, jnp.asarray(setup.loss.temperature))


@dataclasses.dataclass(frozen=True)
class BoundStep:
  """A jitted step (state, data, root_key, temperature, diagnose) with its
  temperature bound: called as (state, data, root_key, diagnose=True); `trace` and
  `lower` as `jax.jit`'s. diagnose=False skips the logged diagnostics (NaN)."""

  jitted: Any
  temperature: jax.Array

  def __call__(self, state, data, root_key, diagnose=True):
    return self.jitted(state, data, root_key, self.temperature, jnp.asarray(diagnose))

  def trace(self, state, data, root_key, diagnose=True):
    return self.jitted.trace(state, data, root_key, self.temperature, jnp.asarray(diagnose))

  def lower(self, state, data, root_key, diagnose=True):
    return self.jitted.lower(state, data, root_key, self.temperature, jnp.asarray(diagnose))


def enable_compilation_cache(directory: str | None = None) -> None:
  """Keeps compiled programs in `directory` (JAX's persistent compilation cache);
  None: `jax/` in the project's cache ($CONTRASTIVE_CACHE, else ~/.cache/contrastive).

  A resumed run, a sweep's runs that differ only in temperature or seed, and the
  evaluation programs of same-shaped runs then load their programs instead of
  compiling them again. Process-wide; `run.py` turns it on (--compilation_cache).
  """
  directory = directory or os.path.join(objects.cache_dir(), "jax")
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def stack_population(state: TrainState, size: int) -> TrainState:
  """`size` copies of `state` stacked on a leading axis: a population's start."""
  return jax.tree.map(lambda x: jnp.stack([x] * size), state)


def jit_population_step(setup: Setup, temperatures):
  """`population_step` jitted for `setup` and `temperatures`, donating the old states:
  (states, data, root_key) -> (states, metrics), like `jit_train_step`."""
  jitted = jax.jit(
    lambda st, data, root, taus, diagnose: population_step(st, data, root, setup, taus, diagnose),
    donate_argnums=0,
  )
  return BoundStep(jitted, temperatures)


# ----------------------------------------------------------------------------------
# The whole run.


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or inf; the message names the step."""


class Preempted(SystemExit):
  """SIGTERM arrived; a checkpoint was saved and the run stopped cleanly (exit 0)."""

  def __init__(self, message: str):
    print(message)
    super().__init__(0)


def _check_finite(step, step_metrics):
  loss = np.asarray(step_metrics["loss"])
  if not np.all(np.isfinite(loss)):
    shown = float(loss) if loss.ndim == 0 else loss.tolist()
    raise NonFiniteLossError(
      f"loss is {shown} at step {step}; training stopped (the last checkpoint before it is kept)."
    )


def make_setup(
  config, mesh, num_train: int, per_epoch: int | None = None, num_classes: int | None = None
) -> tuple[Setup, int]:
  """The step's static objects for `config` on `mesh`, and the run's number of steps.

  `per_epoch`: steps per epoch, where they are not num_train // batch (a streamed
  dataset's, `streaming.StreamData.steps_per_epoch`); `num_classes`: the labels'
  (the online probe's outputs, with eval.online_probe)."""
  model = models.create(
    config.model.encoder,
    stem=config.model.stem,
    width=config.model.width,
    out_dim=config.model.out_dim,
    hidden_dim=config.model.hidden_dim,
    head_depth=config.model.head_depth,
    dtype=models.DTYPES[config.model.dtype],
  )
  probe = config.eval.get("online_probe", False)
  if probe and not num_classes:
    raise ValueError("eval.online_probe needs make_setup(..., num_classes=the labels' count).")
  if per_epoch is None:
    per_epoch = pipeline.steps_per_epoch(num_train, config.data.batch_size)
  num_steps = config.train.num_epochs * per_epoch
  schedule = optim.learning_rate_schedule(config.optimizer, per_epoch, num_steps)
  return Setup(
    model=model,
    tx=optim.create_optimizer(config.optimizer, schedule),
    schedule=schedule,
    loss=config.loss,
    augment=augment.preset(config.data.augment, config.data.image_size),
    batch_size=config.data.batch_size,
    data_seed=config.seed,
    bank_momentum=config.loss.bank_momentum,
    loss_scale=config.loss.get("scale", 1.0),
    mesh=mesh,
    temperature_schedule=objective.temperature_schedule(config.loss, per_epoch),
    temperature_tx=(
      optax.adam(config.loss.temperature_learning_rate)
      if config.loss.get("temperature_learned", "none") == "global"
      else None
    ),
    probe_tx=optax.sgd(config.eval.online_probe_learning_rate, momentum=0.9) if probe else None,
    probe_classes=num_classes or 0,
  ), num_steps


@dataclasses.dataclass(frozen=True)
class Run:
  """What a run builds before its first step: the step's setup, the initial state,
  the data (train, test, probes), the root key and the number of steps."""

  setup: Setup
  state: TrainState
  data: datasets.RunData
  root: jax.Array
  num_steps: int


def build_run(config) -> Run:
  """Everything `config`'s run needs before its first step, on a mesh of all devices."""
  mesh = make_mesh()
  data = datasets.prepare(config.data, mesh=mesh)
  per_epoch = None
  if isinstance(data.train, streaming.StreamData):
    per_epoch = data.train.steps_per_epoch(config.data.batch_size)
  setup, num_steps = make_setup(
    config, mesh, data.train.num_examples, per_epoch, num_classes=data.num_classes
  )
  root = jax.random.key(config.seed)
  state = create_state(
    setup, jax.random.fold_in(root, 0), data.image_shape, data.train.num_examples
  )
  if config.loss.get("scale_reference", "none") == "nt_xent":
    scale = calibrate_loss_scale(config, setup, state, data.train, root)
    setup = dataclasses.replace(setup, loss_scale=scale)
  return Run(setup, state, data, root, num_steps)


def describe(config, run: Run, temperatures=None, workdir=None) -> str:
  """One line on what `run` trains and where: its config file and `workdir`, data,
  model, loss (`temperatures`: a population's), then the platform, devices, processes
  and the global and per-device batch. Printed at a run's start, so a pod slice that
  came up short says so."""
  devices = jax.devices()
  kind = devices[0].device_kind if devices[0].platform != "cpu" else "cpu"
  train, test = run.data.train.num_examples, run.data.test.num_examples
  height, width, channels = run.data.image_shape
  batch = config.data.batch_size
  taus = temperatures if temperatures is not None else [config.loss.temperature]
  tau = ", ".join(f"{t:g}" for t in taus)
  schedule = config.loss.get("temperature_schedule", "constant")
  if schedule == "cosine":
    tau = f"cosine {config.loss.temperature_min:g}..{config.loss.temperature_max:g}"
  elif schedule == "linear":
    tau = f"linear {config.loss.temperature_max:g} -> {config.loss.temperature:g}"
  learned = config.loss.get("temperature_learned", "none")
  if learned == "global":
    tau = f"learned from {config.loss.temperature:g}"
  elif learned == "per_sample":
    tau = f"per sample from {config.loss.temperature:g}"
  scaled = f", x {run.setup.loss_scale:.4g}" if run.setup.loss_scale != 1.0 else ""
  loss = f"{config.loss.name} ({config.loss.layout}, tau {tau}{scaled})"
  where = " ".join(filter(None, (config.get("config_file"), workdir and f"-> {workdir}")))
  return (
    f"run: {where + ' | ' if where else ''}"
    f"{config.data.name} {train:,} train / {test:,} "
    f"{'held out' if config.data.get('holdout_fraction') else 'test'} {height}x{width}x{channels}, "
    f"{config.model.encoder} {config.model.dtype}, {loss}, {run.num_steps:,} steps | "
    f"{devices[0].platform} ({kind}) x {len(devices)} devices, "
    f"{jax.process_count()} process{'es' if jax.process_count() > 1 else ''}, "
    f"batch {batch:,} ({batch // len(devices):,} per device)"
  )


def _finish(config, workdir, run: Run, state, loss, t_start, times, **extra) -> dict:
  """Evaluates `state` and writes WORKDIR/results.json (process 0); returns the results.

  `times` holds the run's phases so far (`_train_loop`); the evaluation's is added,
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
    **learned_temperatures(state),
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


def learned_temperatures(state) -> dict:
  """The learned temperatures a state ends with, for results.json: the global one
  ("learned_temperature"), or the per-sample ones' distribution ("sample_temperature":
  mean, std, min, 10/50/90th percentiles, max); {} where tau is not learned."""
  if state.log_temperature is not None:
    return {"learned_temperature": float(np.exp(np.asarray(state.log_temperature)))}
  if state.sample_temperature is None:
    return {}
  tau = np.asarray(state.sample_temperature["tau"], np.float64)
  p10, p50, p90 = np.percentile(tau, [10, 50, 90])
  stats = dict(mean=tau.mean(), std=tau.std(), min=tau.min(), p10=p10, p50=p50, p90=p90,
               max=tau.max())  # fmt: skip
  return {"sample_temperature": {k: float(v) for k, v in stats.items()}}


def train_and_evaluate(config, workdir: str, *, lock=None) -> dict:
  """Trains as `config` says, evaluates, and writes WORKDIR/results.json.

  Resumes from the latest checkpoint in WORKDIR/checkpoints if there is one. On
  several processes (after `jax.distributed.initialize`), each reads only its
  shard of the data; process 0 writes the logs and results.

  Args:
    config: the run's config.
    workdir: its directory.
    lock: the `checkpoint.WorkdirLock` on `workdir` if the caller took it already (a
      sweep claims a run before loading its data); taken here otherwise. Released
      when the run ends.

  Returns:
    The results dict (also written to results.json).
  """
  t_start = time.perf_counter()
  run = build_run(config)  # first: a missing dataset stops before the workdir exists
  lock = lock or _lock(workdir)
  try:
    times = {"setup": round(time.perf_counter() - t_start, 1)}
    step_fn = jit_train_step(run.setup)
    state, loss = _train_loop(config, workdir, run, run.state, step_fn, [workdir], times)
    return _finish(config, workdir, run, state, loss[0], t_start, times)
  finally:
    lock.release()


def _lock(workdir: str):
  """Process 0's lock on `workdir` (`checkpoint.WorkdirLock`); a no-op elsewhere."""
  if jax.process_index() != 0:
    return checkpoint.NoLock()
  return checkpoint.WorkdirLock(workdir)


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
  update is `train_step`'s, vmapped over the temperatures (`population_step`).

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
  run = build_run(config)  # first: a missing dataset stops before the workdir exists
  lock = lock or _lock(workdir)
  try:
    return _train_population(config, workdir, members, run, t_start)
  finally:
    lock.release()


def _train_population(config, workdir, members, run: Run, t_start) -> list[dict]:
  times = {"setup": round(time.perf_counter() - t_start, 1)}
  # The float dtype the separate runs' Python-float temperatures take.
  temperatures = jnp.asarray([c.loss.temperature for _, c in members])
  size = len(members)
  states = stack_population(run.state, size)
  step_fn = jit_population_step(run.setup, temperatures)
  dirs = [d for d, _ in members]
  states, loss = _train_loop(
    config, workdir, run, states, step_fn, dirs, times, [c.loss.temperature for _, c in members]
  )
  return [
    _finish(
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


def _train_loop(config, workdir, run: Run, state, step_fn, metric_dirs, times, temperatures=None):
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
    print(describe(config, run, temperatures, workdir))
    where = f"resuming from step {start} ({ckpt.directory}/{start})"
    print(where if start else "starting from scratch", flush=True)
  writers = [
    logs.MetricWriter(d, tensorboard=config.train.tensorboard, resume_step=start, enabled=lead)
    for d in metric_dirs
  ]
  progress = logs.Progress(num_steps, start=start, enabled=lead)
  stop = checkpoint.StopRequest()
  pending, last_log = None, (start, time.perf_counter())
  loss = [float("nan")] * len(writers)
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
      if logged:
        if pending is not None:
          loss = _log(writers, progress, pending, last_log, config.data.batch_size)
          last_log = (pending[0], time.perf_counter())
        pending = (done, step_metrics)
      if monitored:  # the kNN monitor, in this step's row, written now; not timed as steps
        jax.block_until_ready(step_metrics)
        ready = time.perf_counter()
        pending = (done, {**step_metrics, "knn_monitor": monitor(state)})
        loss = _log(writers, progress, pending, last_log, config.data.batch_size, ready)
        last_log, pending = (done, time.perf_counter()), None
      if done % ckpt.every == 0 or stop.requested or done == num_steps:
        # Never save a diverged state: the last good checkpoint must survive a NaN.
        _check_finite(done, step_metrics)
        if pending is not None:  # the logged rows up to a checkpoint go out with it
          loss = _log(writers, progress, pending, last_log, config.data.batch_size)
          last_log, pending = (pending[0], time.perf_counter()), None
        ckpt.save(done, state)
        for w in writers:  # a bucket's logs are uploaded at each checkpoint
          w.flush()
      if stop.requested and done < num_steps:
        raise Preempted(
          f"SIGTERM received: saved a checkpoint at step {done} in "
          f"{workdir}/checkpoints; rerun the same command to resume."
        )
    if pending is not None:
      loss = _log(writers, progress, pending, last_log, config.data.batch_size)
    elif num_steps == start:  # resumed after the last step: read back the last loss
      loss = [w.last_value("loss") for w in writers]
  finally:
    times["train"] = round(time.perf_counter() - t_loop - times["first_step"], 1)
    stop.restore()
    progress.close()
    for w in writers:
      w.close()
    ckpt.close()
  return state, loss


def _inputs(run: Run, start: int):
  """What each step from `start` takes as its data: the device-held training split
  (the step builds its batch), or a streamed dataset's next batch of host crops as
  one global array over the mesh (each process gives its share)."""
  if isinstance(run.data.train, pipeline.DeviceData):
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
  _check_finite(step, values)
  histograms = {}
  if SAMPLE_TEMPERATURES in values:  # not a scalar: TensorBoard's histogram only
    histograms[SAMPLE_TEMPERATURES] = values.pop(SAMPLE_TEMPERATURES)
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
