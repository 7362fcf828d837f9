"""The train state and the one compiled step `(state, data) -> (state, metrics)`.

One pure jitted step over a ('data',) device mesh. The step builds its own batch on
the device (`pipeline.train_batch`), constrains it to be sharded over 'data', and
computes the loss on the *global* batch: XLA inserts the all-gathers that give every
anchor the negatives of every device, so there is no pmap, no pmean and no
hand-written gather. BatchNorm statistics are likewise those of the global batch.
The loss is the objective's (`contrastive.objective`), the temperature the run's
(`contrastive.temperature`), the update the optimiser's (`contrastive.optim`).

Randomness: one root key from `config.seed`; augmentation uses
fold_in(fold_in(root, 1), step) and the SWD projections fold_in(fold_in(root, 2),
step), so a resumed run draws exactly the same randomness.
"""

import collections
import dataclasses
import functools
import json
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import optax

from contrastive import models
from contrastive import numerics
from contrastive import objective
from contrastive import paths
from contrastive import temperature as temperature_lib
from contrastive.data import augment
from contrastive.data import latent
from contrastive.data import pipeline


@flax.struct.dataclass
class TrainState:
  """Everything a step changes: params, BN statistics, optimizer, memory bank, step."""

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  bank: jax.Array | None  # [num_train, out_dim] NPID memory bank, or None
  # The temperature's state (`temperature.Temperature.init`): a learned global log tau
  # and its Adam state, or the per-sample temperatures; None where tau is not learned.
  log_temperature: jax.Array | None = None
  temperature_opt_state: Any = None
  sample_temperature: Any = None
  # The online linear probe (eval.online_probe): a classifier on the encoder's
  # stop-gradient features, {"w", "b"}, and its optimizer state; None otherwise.
  probe_params: Any = None
  probe_opt_state: Any = None


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
  temperature: temperature_lib.Temperature  # how the run sets tau
  probe_tx: Any = None  # the online linear probe's optimizer, or None
  probe_classes: int = 0  # the online probe's number of classes
  # The loss's multiplier: loss.scale, or the one that matches NT-Xent's gradient norm
  # at initialisation (loss.scale_reference="nt_xent"; `build.calibrate_loss_scale`).
  loss_scale: float = 1.0
  # What the step's programs depend on, as text (`build.make_setup`: the config but its
  # seeds, the data's size, the mesh): setups with the same one share their traced and
  # compiled programs within a process (`program`), so a sweep's seeds trace each
  # once; None: every program its own.
  fingerprint: str | None = None


# XLA's CPU compiler options for the training programs (a run's step, a population's, the
# loss calibration's gradients, the evaluation's encoder): XLA's own convolutions and dots
# (faster here than YNNPACK's) with YNNPACK's reductions (BatchNorm's long sums; XLA's own
# put a first ResNet-18 update 3e-3 off float64). BENCHMARKS.md, "XLA's own convolutions
# with YNNPACK's reductions". On a CPU only; other platforms get JAX's defaults.
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}


# XLA's CPU compiler options for the programs a run compiles and runs once (the initial
# state, `create_state`; the evaluation's augmented views, `jit_on(..., run_once=True)`):
# LLVM's level 1, not 2, whose passes over their random-number fusions were most of their
# compile (ResNet-18 width 8's initial state 3.7 s of CPU against 16.6-18.1 s). Same bits,
# checked against JAX's defaults in tests/test_train.py; not for the step, whose bits it
# moves (BENCHMARKS.md, "... at LLVM level 1").
CPU_RUN_ONCE_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def compiler_options(where: jax.sharding.Mesh | str, options=None) -> dict | None:
  """The compiler options of the training programs on `where` (a mesh, or a platform's
  name: "cpu", "gpu", "tpu"): `options` (default `CPU_COMPILER_OPTIONS`) on a CPU, none
  (JAX's defaults) on a GPU or TPU."""
  platform = where if isinstance(where, str) else where.devices.flat[0].platform
  if platform != "cpu":
    return None
  return dict(CPU_COMPILER_OPTIONS if options is None else options)


@functools.cache
def jit_on(fn, platform: str, static_argnums=(), run_once: bool = False):
  """`fn` jitted, once per argument set, with `compiler_options(platform)`: the training
  programs' on a CPU, or with `run_once` `CPU_RUN_ONCE_COMPILER_OPTIONS`."""
  options = compiler_options(platform, CPU_RUN_ONCE_COMPILER_OPTIONS if run_once else None)
  return jax.jit(fn, static_argnums=static_argnums, compiler_options=options)


# The programs of setups with a fingerprint, most recently used last (`program`).
_PROGRAMS: collections.OrderedDict = collections.OrderedDict()
_KEPT_PROGRAMS = 128


def program(setup: Setup, name: str, build, *key):
  """`build()`, a jitted program closing over `setup`, kept for the process: a later
  setup with the same fingerprint (and `key`) gets the same one instead of tracing and
  compiling (or loading) it again. Its closures may hold the first setup, so what
  differs between such setups (the data seed, a calibrated loss scale) must be the
  program's arguments; whether a loss scale applies at all is part of the key."""
  if setup.fingerprint is None:
    return build()
  k = (name, setup.fingerprint, setup.loss_scale != 1.0, *key)
  if k in _PROGRAMS:
    _PROGRAMS.move_to_end(k)
  else:
    _PROGRAMS[k] = build()
    if len(_PROGRAMS) > _KEPT_PROGRAMS:
      _PROGRAMS.popitem(last=False)
  return _PROGRAMS[k]


def initial_state(setup: Setup, key, image_shape, num_train: int) -> TrainState:
  """The initial state made from `key`: the model's init, the optimizer's, the bank's
  and the probe's (traced; `create_state` compiles it)."""
  k_init, k_bank = jax.random.split(key)
  variables = setup.model.init(k_init, jnp.zeros((2,) + tuple(image_shape)), train=False)
  if setup.model.encoder.dtype == jnp.float64:  # exactness checks: float64 throughout
    variables = jax.tree.map(lambda x: x.astype(jnp.float64), variables)
  params = variables["params"]
  bank = None
  if objective.uses_bank(setup.loss):
    shape = (num_train, setup.model.head.out_dim)
    bank = numerics.l2_normalize(jax.random.normal(k_bank, shape))
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
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=setup.tx.init(params),
    bank=bank,
    probe_params=probe,
    probe_opt_state=probe_opt,
    **setup.temperature.init(num_train),
  )


def create_state(setup: Setup, key, image_shape, num_train: int) -> TrainState:
  """`initial_state`, replicated over the mesh.

  Built by one compiled program (on a CPU with `CPU_RUN_ONCE_COMPILER_OPTIONS`): made op by
  op, each small array would compile its own program (21 of them for the quickstart,
  3.3 s of its setup on 2 CPU cores)."""

  def initial(key):
    return initial_state(setup, key, image_shape, num_train)

  # Traced (`jax.eval_shape`: an abstract state), the program is part of the caller's,
  # which alone takes compiler options.
  nested = isinstance(key, jax.core.Tracer)
  options = None if nested else compiler_options(setup.mesh, CPU_RUN_ONCE_COMPILER_OPTIONS)
  build = lambda: jax.jit(  # noqa: E731
    initial, out_shardings=NamedSharding(setup.mesh, P()), compiler_options=options
  )
  return program(setup, "create_state", build, tuple(image_shape), num_train, nested)(key)


def batch(data, root_key, step, setup: Setup, seed=None) -> dict:
  """The augmented global batch of `step`, sharded over the mesh's 'data' axis.

  `data` is the training split on the device (`pipeline.DeviceData`: the step
  gathers and augments its batch; `latent.LatentData`: it renders its views), or a
  streamed dataset's batch of host crops
  ({"views": uint8 [B, 2, S, S, 3], "index", "label"}: the step colours them with
  the keys the device path would use). `seed`: the data order's seed, possibly traced
  (default `setup.data_seed`).
  """
  key = jax.random.fold_in(root_key, 1)
  seed = setup.data_seed if seed is None else seed
  if isinstance(data, pipeline.DeviceData):
    out = pipeline.train_batch(
      data, key, step, seed=seed, batch_size=setup.batch_size, config=setup.augment
    )
  elif isinstance(data, latent.LatentData):  # views rendered from their latents
    out = latent.train_batch(data, key, step, seed=seed, batch_size=setup.batch_size)
  else:
    v1, v2 = augment.photometric_batch(
      jax.random.fold_in(key, step), data["views"], setup.augment, data["index"]
    )
    out = {"view1": v1, "view2": v2, "index": data["index"], "label": data["label"]}
  return jax.lax.with_sharding_constraint(out, NamedSharding(setup.mesh, P("data")))


def forward_views(setup: Setup, params, batch_stats, views):
  """Both views through the model in training mode, as one batch (BatchNorm statistics
  of the pair): (encoder features [2B, F], z1 [B, D], z2 [B, D], new batch_stats)."""
  (h, z), updates = setup.model.apply(
    {"params": params, "batch_stats": batch_stats},
    jnp.concatenate([views["view1"], views["view2"]]),
    train=True,
    mutable=["batch_stats"],
  )
  z1, z2 = jnp.split(z, 2)
  return h, z1, z2, updates["batch_stats"]


def gradient_norms(setup: Setup, loss_cfgs, state: TrainState, data, root_key, steps=(0,)):
  """The norms of the gradient, w.r.t. the parameters of `state`, of each loss of
  `loss_cfgs` (unscaled) on the augmented batch of each of `steps` (the trainer's own
  batches and keys): one list per loss, one norm per step; one compiled program for
  all of them (a calibration's losses share its batch and compile once)."""

  def norms(state, data, step, seed, root_key):
    views = batch(data, root_key, step, setup, seed)
    key = jax.random.fold_in(jax.random.fold_in(root_key, 2), step)

    def grad_norm(loss_cfg):
      def loss_fn(params):
        _, z1, z2, _ = forward_views(setup, params, state.batch_stats, views)
        return objective.loss(loss_cfg, z1, z2, indices=views["index"], bank=state.bank,
                              key=key, mesh=setup.mesh)  # fmt: skip

      return optax.tree.norm(jax.grad(loss_fn)(state.params))

    return jnp.stack([grad_norm(c) for c in loss_cfgs])

  losses = json.dumps([c.to_dict() for c in loss_cfgs], sort_keys=True, default=str)
  options = compiler_options(setup.mesh)
  jitted = program(
    setup, "gradient_norms", lambda: jax.jit(norms, compiler_options=options), losses
  )
  # The seeds are arguments, not constants: a study's seeds share the program.
  seed = jnp.asarray(setup.data_seed, jnp.int32)
  per_step = [
    [float(n) for n in jitted(state, data, jnp.asarray(k, jnp.int32), seed, root_key)]
    for k in steps
  ]
  return [list(column) for column in zip(*per_step, strict=True)]


def update(state: TrainState, views: dict, root_key, setup: Setup, temperature=None,
           diagnose=True, loss_scale=None):  # fmt: skip
  """One optimisation step of `state` on the batch `views`: (state, metrics).

  `temperature` is the fixed tau (the config's, or a population member's); the run's
  `temperature.Temperature` says whether the step uses it or its own (a schedule, a
  learned or per-sample tau). `diagnose` (a bool, possibly traced) says whether to
  compute the similarity diagnostics (`objective.diagnostics`); when false they are
  NaN and cost nothing. `loss_scale`: the loss's multiplier, possibly traced (default
  `setup.loss_scale`); a run whose setup has loss_scale 1.0 multiplies by nothing.
  """
  loss_key = jax.random.fold_in(jax.random.fold_in(root_key, 2), state.step)
  tau_of = setup.temperature
  learned = tau_of.mode == "learned"  # log tau is then differentiated with the params

  def loss_fn(params, log_tau):
    tau = tau_of.value(state, fixed=temperature, log_tau=log_tau, indices=views["index"])
    h, z1, z2, batch_stats = forward_views(setup, params, state.batch_stats, views)
    value = objective.loss(setup.loss, z1, z2, indices=views["index"], bank=state.bank,
                           key=loss_key, temperature=tau, mesh=setup.mesh)  # fmt: skip
    if setup.loss_scale != 1.0:
      value = (setup.loss_scale if loss_scale is None else loss_scale) * value
    return value, (batch_stats, z1, z2, h, tau)

  (loss, (batch_stats, z1, z2, h, tau)), grads = jax.value_and_grad(
    loss_fn, argnums=(0, 1) if learned else 0, has_aux=True
  )(state.params, state.log_temperature)
  grads, tau_grad = grads if learned else (grads, None)
  stats = _diagnostics(setup, z1, z2, views["index"], state.bank, tau, diagnose)
  updates, opt_state = setup.tx.update(grads, state.opt_state, state.params)
  # Before the bank moves: a per-sample tau's update sees the negatives the loss saw.
  tau_state, tau_metrics = tau_of.update(state, tau_grad, z1, z2, indices=views["index"])
  bank = state.bank
  if bank is not None:
    bank = objective.update_bank(bank, views["index"], z1, z2, setup.bank_momentum)
  probe, probe_opt, probe_metrics = state.probe_params, state.probe_opt_state, {}
  if probe is not None:
    labels = jnp.concatenate([views["label"], views["label"]])
    probe, probe_opt, probe_metrics = _probe_update(setup, probe, probe_opt, h, labels)
  new_state = state.replace(
    step=state.step + 1,
    params=optax.apply_updates(state.params, updates),
    batch_stats=batch_stats,
    opt_state=opt_state,
    bank=bank,
    probe_params=probe,
    probe_opt_state=probe_opt,
    **tau_state,
  )
  step_metrics = {
    "loss": loss,
    "learning_rate": jnp.asarray(setup.schedule(state.step)),
    "grad_norm": optax.tree.norm(grads),
    **stats,
    **tau_metrics,
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
  metrics = {"probe_loss": loss, "probe_accuracy": accuracy}
  return optax.apply_updates(probe, updates), opt_state, metrics


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
  views = batch(data, root_key, state.step, setup)
  return update(state, views, root_key, setup, diagnose=diagnose)


def jit_train_step(setup: Setup):
  """`train_step` jitted for `setup`, donating the old state.

  The temperature is an argument of the compiled program, not a constant in it, so
  runs that differ only in `loss.temperature` compile to the same program: with a
  persistent compilation cache (`enable_compilation_cache`) a sweep's later runs
  load it instead of compiling. So are the data order's seed (a study's seeds share
  one program), the loss's calibrated scale (the generalized losses' runs each
  calibrate their own), and `diagnose`: logged and unlogged steps share one program.
  """
  jitted = program(
    setup,
    "train_step",
    lambda: jax.jit(
      lambda st, data, root, tau, scale, seed, diagnose: update(
        st, batch(data, root, st.step, setup, seed), root, setup, tau, diagnose, scale
      ),
      donate_argnums=0,
      compiler_options=compiler_options(setup.mesh),
    ),
  )
  # The dtype a Python-float temperature takes in the loss (as a population's).
  return BoundStep(jitted, jnp.asarray(setup.loss.temperature), *bound_arguments(setup))


def bound_arguments(setup: Setup) -> tuple[jax.Array, jax.Array]:
  """The step's arguments that `setup` fixes but its program need not: the loss scale
  and the data order's seed, as `BoundStep` passes them."""
  return jnp.asarray(setup.loss_scale), jnp.asarray(setup.data_seed, jnp.int32)


@dataclasses.dataclass(frozen=True)
class BoundStep:
  """A jitted step (state, data, root_key, temperature, loss_scale, data_seed, diagnose)
  with its temperature, loss scale and data seed bound: called as (state, data,
  root_key, diagnose=True); `trace` and `lower` as `jax.jit`'s. diagnose=False skips
  the logged diagnostics (NaN)."""

  jitted: Any
  temperature: jax.Array
  loss_scale: jax.Array
  data_seed: jax.Array

  def _args(self, diagnose):
    return self.temperature, self.loss_scale, self.data_seed, jnp.asarray(diagnose)

  def __call__(self, state, data, root_key, diagnose=True):
    return self.jitted(state, data, root_key, *self._args(diagnose))

  def trace(self, state, data, root_key, diagnose=True):
    return self.jitted.trace(state, data, root_key, *self._args(diagnose))

  def lower(self, state, data, root_key, diagnose=True):
    return self.jitted.lower(state, data, root_key, *self._args(diagnose))


def enable_compilation_cache(directory: str | None = None) -> None:
  """Keeps compiled programs in `directory` (JAX's persistent compilation cache);
  None: `jax/` in the project's cache (`paths.cache_dir`).

  A resumed run, a sweep's runs that differ only in temperature or seed, and the
  evaluation programs of same-shaped runs then load their programs instead of
  compiling them again. Process-wide; `run.py` turns it on (--compilation_cache).
  Programs that compile in under 0.5 s are not kept, unless JAX's own
  $JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise (the test suite keeps
  every program: 0).
  """
  directory = directory or os.path.join(paths.cache_dir(), "jax")
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", directory)
  minimum = os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  jax.config.update("jax_persistent_cache_min_compile_time_secs", float(minimum))
