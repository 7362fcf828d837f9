"""Training: the state, the objective, the sharded step and `train_and_evaluate`.

One pure jitted step `(state, data) -> (state, metrics)` over a ('data',) device
mesh. The step builds its own batch on the device (`pipeline.train_batch`),
constrains it to be sharded over 'data', and computes the loss on the *global*
batch: XLA inserts the all-gathers that give every anchor the negatives of every
device, so there is no pmap, no pmean and no hand-written gather. BatchNorm
statistics are likewise those of the global batch.

Randomness: one root key from `config.seed`; augmentation uses
fold_in(fold_in(root, 1), step) and the SWD projections fold_in(fold_in(root, 2),
step), so a resumed run draws exactly the same randomness.
"""

import dataclasses
import functools
import json
import os
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax

from contrastive import analysis
from contrastive import checkpoint
from contrastive import evaluate
from contrastive import logs
from contrastive import losses
from contrastive import metrics
from contrastive import models
from contrastive import numerics
from contrastive import pairs
from contrastive.data import augment
from contrastive.data import pipeline
from contrastive.data import sources
from contrastive.data import suppression


@flax.struct.dataclass
class TrainState:
  """Everything a step changes: params, BN statistics, optimizer, memory bank, step."""

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  bank: jax.Array | None  # [num_train, out_dim] NPID memory bank, or None


# ----------------------------------------------------------------------------------
# The objective: a loss kernel on a layout of negatives.


def _layout(name, z1, z2, bank, indices):
  """(pos, neg, neg_mask) for the named layout; the memory bank takes 2B anchors."""
  if name == "simclr":
    return pairs.simclr_pairs(z1, z2)
  if name == "cross_view":
    return pairs.cross_view_pairs(z1, z2, symmetric=True)
  # Memory bank: both views are anchors, each the other's positive; negatives are
  # the bank entries of every other training instance.
  both_idx = jnp.concatenate([indices, indices])
  return pairs.memory_bank_pairs(
    jnp.concatenate([z1, z2]), jnp.concatenate([z2, z1]), bank, both_idx
  )


LAYOUTS = ("simclr", "cross_view", "memory_bank")


def _hard(cfg):
  return (
    {"num_hard": cfg.num_hard}
    if cfg.hard_fraction is None
    else {"hard_fraction": cfg.hard_fraction}
  )


# Similarity-level losses: name -> per-anchor loss of (pos, neg, mask, loss config,
# temperature); the temperature is an argument so a population can vary it.
SIMILARITY_LOSSES = {
  "contrastive": lambda p, n, m, c, t: losses.contrastive_loss(p, n, temperature=t, neg_mask=m),
  "hard_contrastive": lambda p, n, m, c, t: losses.hard_contrastive_loss(
    p, n, temperature=t, neg_mask=m, **_hard(c)
  ),
  "simple": lambda p, n, m, c, t: losses.simple_loss(p, n, weight=c.simple_weight, neg_mask=m),
  "hard_simple": lambda p, n, m, c, t: losses.hard_simple_loss(
    p, n, weight=c.simple_weight, neg_mask=m, **_hard(c)
  ),
  "macl": lambda p, n, m, c, t: losses.macl_loss(
    p,
    n,
    temperature=t,
    alpha=c.macl_alpha,
    alignment_ref=c.macl_alignment_ref,
    schedule=c.macl_schedule,
    neg_mask=m,
  ),
}
LOSS_NAMES = tuple(SIMILARITY_LOSSES) + ("generalized",)


def objective(cfg, z1, z2, *, indices, bank, key, temperature=None):
  """The configured loss on projections z1, z2 [B, D], and similarity statistics.

  `temperature` (a scalar, possibly traced) replaces `cfg.temperature` when given.

  Returns:
    (scalar loss, dict of scalar diagnostics).
  """
  z1 = numerics.as_compute(z1)
  z2 = numerics.as_compute(z2)
  layout = "simclr" if cfg.name == "generalized" else cfg.layout
  pos, neg, mask = _layout(layout, z1, z2, bank, indices)
  tau = cfg.temperature if temperature is None else temperature
  if cfg.name == "generalized":
    loss = losses.generalized_contrastive_loss(
      z1,
      z2,
      distribution=cfg.distribution,
      weight=cfg.weight,
      temperature=tau,
      normalize=cfg.normalize,
      key=key,
    )
  else:
    loss = jnp.mean(SIMILARITY_LOSSES[cfg.name](pos, neg, mask, cfg, tau))
  if cfg.name == "macl":
    tau = losses.macl_temperature(
      pos,
      temperature=tau,
      alpha=cfg.macl_alpha,
      alignment_ref=cfg.macl_alignment_ref,
      schedule=cfg.macl_schedule,
    )
  stats = jax.lax.stop_gradient(
    {
      "pos_sim": jnp.mean(pos),
      "neg_sim": jnp.sum(jnp.where(mask, neg, 0.0)) / jnp.sum(mask),
      "neg_sim_max": jnp.mean(jnp.max(jnp.where(mask, neg, -jnp.inf), axis=-1)),
      "penalty_entropy": jnp.mean(
        analysis.penalty_entropy(pos, neg, temperature=tau, neg_mask=mask)
      ),
      "temperature": jnp.asarray(tau, jnp.float32),
      "batch_alignment": metrics.alignment(z1, z2),
      "batch_uniformity": metrics.uniformity(z1),
    }
  )
  return loss, stats


def update_bank(bank, indices, z1, z2, momentum):
  """NPID's memory-bank update: v <- normalise(m v + (1 - m) f), f the views' mean."""
  f = (numerics.l2_normalize(z1) + numerics.l2_normalize(z2)) / 2
  new = momentum * bank[indices] + (1 - momentum) * jax.lax.stop_gradient(f)
  return bank.at[indices].set(numerics.l2_normalize(new))


# ----------------------------------------------------------------------------------
# Optimisers.


def learning_rate_schedule(cfg, steps_per_epoch: int, num_steps: int):
  """The configured schedule as a function of the step."""
  if cfg.schedule == "constant":
    return optax.constant_schedule(cfg.learning_rate)
  if cfg.schedule == "step":  # Wang & Liu: x decay_factor at each of decay_epochs
    return optax.piecewise_constant_schedule(
      cfg.learning_rate, {int(e * steps_per_epoch): cfg.decay_factor for e in cfg.decay_epochs}
    )
  if cfg.schedule == "warmup_cosine":  # SimCLR
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    return optax.warmup_cosine_decay_schedule(
      0.0, cfg.learning_rate, warmup, max(num_steps, warmup + 1)
    )
  if cfg.schedule == "linear":  # RandBit notebook: linear decay to 0
    return optax.linear_schedule(cfg.learning_rate, 0.0, num_steps)
  raise ValueError(f"Unknown schedule {cfg.schedule!r}; valid: {', '.join(SCHEDULES)}.")


SCHEDULES = ("constant", "step", "warmup_cosine", "linear")
OPTIMIZERS = ("sgd", "lars", "adam")


def _decay_mask(params, exclude_bn_and_bias: bool):
  # Kernels are >= 2-D; biases and BatchNorm scales/offsets are 1-D.
  return jax.tree.map(lambda p: p.ndim > 1 or not exclude_bn_and_bias, params)


def create_optimizer(cfg, schedule) -> optax.GradientTransformation:
  """SGD + momentum (Wang & Liu), LARS (SimCLR) or Adam (RandBit), with weight decay."""
  mask = functools.partial(_decay_mask, exclude_bn_and_bias=cfg.exclude_bn_and_bias)
  if cfg.name == "sgd":  # coupled L2, as PyTorch's SGD(weight_decay=...)
    return optax.chain(
      optax.add_decayed_weights(cfg.weight_decay, mask), optax.sgd(schedule, momentum=cfg.momentum)
    )
  if cfg.name == "lars":
    return optax.lars(
      schedule,
      weight_decay=cfg.weight_decay,
      weight_decay_mask=mask,
      trust_ratio_mask=mask,
      momentum=cfg.momentum,
    )
  if cfg.name == "adam":  # coupled L2, as a Keras kernel regulariser
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask), optax.adam(schedule))
  raise ValueError(f"Unknown optimizer {cfg.name!r}; valid: {', '.join(OPTIMIZERS)}.")


# ----------------------------------------------------------------------------------
# State, step.


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


def create_state(setup: Setup, key, image_shape, num_train: int) -> TrainState:
  """Initial state, replicated over the mesh."""
  k_init, k_bank = jax.random.split(key)
  variables = setup.model.init(k_init, jnp.zeros((2,) + tuple(image_shape)), train=False)
  if setup.model.encoder.dtype == jnp.float64:  # exactness checks: float64 throughout
    variables = jax.tree.map(lambda x: x.astype(jnp.float64), variables)
  params = variables["params"]
  bank = None
  if setup.loss.layout == "memory_bank" and setup.loss.name != "generalized":
    bank = numerics.l2_normalize(jax.random.normal(k_bank, (num_train, setup.model.head.out_dim)))
  state = TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=setup.tx.init(params),
    bank=bank,
  )
  return jax.device_put(state, NamedSharding(setup.mesh, P()))


def make_mesh():
  """A 1-D ('data',) mesh over every device, with automatic sharding propagation."""
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def _batch(data: pipeline.DeviceData, root_key, step, setup: Setup) -> dict:
  """The augmented global batch of `step`, sharded over the mesh's 'data' axis."""
  batch = pipeline.train_batch(
    data,
    jax.random.fold_in(root_key, 1),
    step,
    seed=setup.data_seed,
    batch_size=setup.batch_size,
    config=setup.augment,
  )
  return jax.lax.with_sharding_constraint(batch, NamedSharding(setup.mesh, P("data")))


def _update(state: TrainState, batch: dict, root_key, setup: Setup, temperature=None):
  """One optimisation step of `state` on `batch`: (state, metrics)."""
  loss_key = jax.random.fold_in(jax.random.fold_in(root_key, 2), state.step)

  def loss_fn(params):
    (_, z), updates = setup.model.apply(
      {"params": params, "batch_stats": state.batch_stats},
      jnp.concatenate([batch["view1"], batch["view2"]]),
      train=True,
      mutable=["batch_stats"],
    )
    z1, z2 = jnp.split(z, 2)
    loss, stats = objective(
      setup.loss,
      z1,
      z2,
      indices=batch["index"],
      bank=state.bank,
      key=loss_key,
      temperature=temperature,
    )
    return loss, (stats, updates["batch_stats"], z1, z2)

  (loss, (stats, batch_stats, z1, z2)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
    state.params
  )
  updates, opt_state = setup.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  bank = state.bank
  if bank is not None:
    bank = update_bank(bank, batch["index"], z1, z2, setup.bank_momentum)
  new_state = state.replace(
    step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state, bank=bank
  )
  metrics_ = {
    "loss": loss,
    "learning_rate": jnp.asarray(setup.schedule(state.step)),
    "grad_norm": optax.tree.norm(grads),
    **stats,
  }
  return new_state, metrics_


def train_step(state: TrainState, data: pipeline.DeviceData, root_key, setup: Setup):
  """One step on the global batch: (state, data) -> (state, metrics)."""
  return _update(state, _batch(data, root_key, state.step, setup), root_key, setup)


def population_step(
  states: TrainState, data: pipeline.DeviceData, root_key, setup: Setup, temperatures
):
  """One step of a population of models that differ only in their temperature.

  `states` holds P models stacked on a leading axis (all at the same step) and
  `temperatures` [P] their temperatures. The batch is built once and shared, and
  the P updates run as one vmapped program, so member i follows exactly the run
  `train_step` makes with `loss.temperature = temperatures[i]` and the same seed.

  Returns:
    (states, metrics), every metric with a leading axis of size P.
  """
  batch = _batch(data, root_key, states.step[0], setup)
  return jax.vmap(lambda st, t: _update(st, batch, root_key, setup, t))(states, temperatures)


def jit_train_step(setup: Setup):
  """`train_step` jitted for `setup`, donating the old state."""
  return jax.jit(functools.partial(train_step, setup=setup), donate_argnums=0)


def stack_population(state: TrainState, size: int) -> TrainState:
  """`size` copies of `state` stacked on a leading axis: a population's start."""
  return jax.tree.map(lambda x: jnp.stack([x] * size), state)


def jit_population_step(setup: Setup, temperatures):
  """`population_step` jitted for `setup` and `temperatures`, donating the old states:
  (states, data, root_key) -> (states, metrics), like `jit_train_step`."""
  jitted = jax.jit(
    lambda st, data, root, taus: population_step(st, data, root, setup, taus), donate_argnums=0
  )
  return lambda states, data, root_key: jitted(states, data, root_key, temperatures)


@functools.partial(jax.jit, static_argnums=0)
def _forward(model, variables, x):
  return model.apply(variables, x, train=False)


def encode(setup: Setup, state: TrainState, images, *, batch_size: int = 512):
  """Encoder features and projections (eval-mode BatchNorm) of float images [N, ...].

  One compiled forward pass serves every call (the variables are arguments).
  """
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  feats, projs = [], []
  for i in range(0, images.shape[0], batch_size):
    f, z = _forward(setup.model, variables, images[i : i + batch_size])
    feats.append(np.asarray(f, np.float32))
    projs.append(np.asarray(z, np.float32))
  return np.concatenate(feats), np.concatenate(projs)


# ----------------------------------------------------------------------------------
# The whole run.


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or inf; the message names the step."""


class Preempted(SystemExit):
  """SIGTERM arrived; a checkpoint was saved and the run stopped cleanly (exit 0)."""

  def __init__(self, message: str):
    print(message)
    super().__init__(0)


def _check_finite(step, metrics_):
  loss = np.asarray(metrics_["loss"])
  if not np.all(np.isfinite(loss)):
    shown = float(loss) if loss.ndim == 0 else loss.tolist()
    raise NonFiniteLossError(
      f"loss is {shown} at step {step}; training stopped (the last checkpoint before it is kept)."
    )


# model.dtype -> the models' computation dtype. Parameters are float32, except with
# float64 (which needs `jax_enable_x64`; for exactness checks, not for training).
MODEL_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float64": jnp.float64}


def _setup(config, mesh, num_train):
  dtype = MODEL_DTYPES[config.model.dtype]
  model = models.create(
    config.model.encoder,
    stem=config.model.stem,
    width=config.model.width,
    out_dim=config.model.out_dim,
    hidden_dim=config.model.hidden_dim,
    head_depth=config.model.head_depth,
    dtype=dtype,
  )
  per_epoch = pipeline.steps_per_epoch(num_train, config.data.batch_size)
  num_steps = config.train.num_epochs * per_epoch
  schedule = learning_rate_schedule(config.optimizer, per_epoch, num_steps)
  return Setup(
    model=model,
    tx=create_optimizer(config.optimizer, schedule),
    schedule=schedule,
    loss=config.loss,
    augment=augment.preset(config.data.augment, config.data.image_size),
    batch_size=config.data.batch_size,
    data_seed=config.seed,
    bank_momentum=config.loss.bank_momentum,
    mesh=mesh,
  ), num_steps


@dataclasses.dataclass
class _Run:
  """What a run builds before its first step."""

  setup: Setup
  state: TrainState
  source: sources.Source
  train_data: pipeline.DeviceData
  root: jax.Array
  num_steps: int
  digit_labels: tuple | None = None  # digits on images: (train, test) digit labels


def _prepare(config) -> _Run:
  mesh = make_mesh()
  source = sources.load(
    config.data.name,
    data_dir=config.data.data_dir or None,
    seed=config.seed,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    train_examples=config.data.train_examples,
  )
  digit_labels = None
  # .get: configs saved by runs from before digits on images existed lack the fields.
  if config.data.get("digits_pool", 0):
    (train, test), digit_labels = suppression.paste_digits_on_splits(
      (source.train.images, source.train.labels),
      (source.test.images, source.test.labels),
      pool_size=config.data.digits_pool,
      seed=config.seed,
      digit_size=config.data.get("digits_size", 0) or None,
    )
    source = dataclasses.replace(source, train=sources.Split(*train), test=sources.Split(*test))
  train_data = pipeline.to_device(source.train, randbit_bits=config.data.randbit_bits, mesh=mesh)
  channels = source.image_shape[-1] + config.data.randbit_bits
  setup, num_steps = _setup(config, mesh, train_data.num_examples)
  root = jax.random.key(config.seed)
  state = create_state(
    setup,
    jax.random.fold_in(root, 0),
    source.image_shape[:2] + (channels,),
    train_data.num_examples,
  )
  return _Run(setup, state, source, train_data, root, num_steps, digit_labels)


def _finish(config, workdir, run: _Run, state, test_data, loss, t_start, **extra) -> dict:
  """Evaluates `state` and writes WORKDIR/results.json (process 0); returns the results."""
  results = {
    **_evaluate(
      config,
      run.setup,
      state,
      run.train_data,
      test_data,
      run.source.num_classes,
      run.root,
      digit_labels=run.digit_labels,
    ),
    "final_loss": loss,
    "steps": run.num_steps,
    "train_examples": run.train_data.num_examples,
    "test_examples": test_data.num_examples,
    **extra,
    "wall_time_s": round(time.perf_counter() - t_start, 1),
    "config": config.to_dict(),
  }
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "results.json"), "w") as f:
      json.dump(results, f, indent=1, default=str)
  return results


def _test_data(config, run: _Run):
  return pipeline.to_device(
    run.source.test, randbit_bits=config.data.randbit_bits, mesh=run.setup.mesh
  )


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains as `config` says, evaluates, and writes WORKDIR/results.json.

  Resumes from the latest checkpoint in WORKDIR/checkpoints if there is one. On
  several processes (after `jax.distributed.initialize`), each reads only its
  shard of the data; process 0 writes the logs and results.

  Returns:
    The results dict (also written to results.json).
  """
  t_start = time.perf_counter()
  run = _prepare(config)
  step_fn = jit_train_step(run.setup)
  state, loss = _train_loop(config, workdir, run, run.state, step_fn, [workdir])
  return _finish(config, workdir, run, state, _test_data(config, run), loss[0], t_start)


def without_temperature(config) -> dict:
  """`config` as a dict without loss.temperature and the sweep section: what the
  members of a temperature population share."""
  d = config.to_dict()
  d["loss"].pop("temperature")
  d.pop("sweep", None)
  return d


def train_population(config, workdir: str, members) -> list[dict]:
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

  Returns:
    The members' results dicts, in order.
  """
  t_start = time.perf_counter()
  if any(without_temperature(c) != without_temperature(config) for _, c in members):
    raise ValueError("A population's members may differ from its config in loss.temperature only.")
  run = _prepare(config)
  # The float dtype the separate runs' Python-float temperatures take.
  temperatures = jnp.asarray([c.loss.temperature for _, c in members])
  size = len(members)
  states = stack_population(run.state, size)
  step_fn = jit_population_step(run.setup, temperatures)
  dirs = [d for d, _ in members]
  states, loss = _train_loop(config, workdir, run, states, step_fn, dirs)
  test_data = _test_data(config, run)
  return [
    _finish(
      member_config,
      member_dir,
      run,
      jax.tree.map(lambda x, i=i: x[i], states),
      test_data,
      loss[i],
      t_start,
      population_size=size,
      population_member=i,
      population_workdir=os.path.abspath(workdir),
    )
    for i, (member_dir, member_config) in enumerate(members)
  ]


def _train_loop(config, workdir, run: _Run, state, step_fn, metric_dirs):
  """Runs steps from the latest checkpoint in WORKDIR/checkpoints to the last.

  `state` is one model's or a population's (stacked, one member per entry of
  `metric_dirs`, which receive each member's metrics).

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
  writers = [
    logs.MetricWriter(d, tensorboard=config.train.tensorboard, resume_step=start, enabled=lead)
    for d in metric_dirs
  ]
  progress = logs.Progress(num_steps, start=start, enabled=lead)
  stop = checkpoint.StopRequest()
  pending, last_log = None, (start, time.perf_counter())
  loss = [float("nan")] * len(writers)
  try:
    for step in range(start, num_steps):
      state, metrics_ = step_fn(state, run.train_data, run.root)
      done = step + 1
      if done % config.train.log_every == 0 or done == num_steps:
        if pending is not None:
          loss = _log(writers, progress, pending, last_log, config.data.batch_size)
          last_log = (pending[0], time.perf_counter())
        pending = (done, metrics_)
      if done % ckpt.every == 0 or stop.requested or done == num_steps:
        # Never save a diverged state: the last good checkpoint must survive a NaN.
        _check_finite(done, metrics_)
        ckpt.save(done, state)
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
    stop.restore()
    progress.close()
    for w in writers:
      w.close()
    ckpt.close()
  return state, loss


def _evaluate(
  config, setup, state, train_data, test_data, num_classes, root, *, digit_labels=None
) -> dict:
  """kNN, linear probe, pixel kNN and representation metrics on clean images.

  Features are computed once with the backbone frozen (eval-mode BatchNorm); the
  inputs are replicated first, so every process holds them whole. With
  `digit_labels` (digits on images: train and test digit labels), the same
  features are also probed for the pasted digit: digit_knn_accuracy and
  digit_linear_accuracy.
  """
  replicate = jax.jit(lambda x: x, out_shardings=NamedSharding(setup.mesh, P()))
  train_x = replicate(pipeline.eval_images(train_data, 0, train_data.num_examples))
  test_x = replicate(pipeline.eval_images(test_data, 0, test_data.num_examples))
  train_y = np.asarray(replicate(train_data.labels))[: train_data.num_examples]
  test_y = np.asarray(replicate(test_data.labels))[: test_data.num_examples]
  train_f, _ = encode(setup, state, train_x)
  test_f, test_z = encode(setup, state, test_x)
  test_images = replicate(test_data.images)[: test_data.num_examples]
  v1, v2 = augment.augment_batch(jax.random.fold_in(root, 3), test_images, setup.augment)
  if test_data.bits is not None:
    bits = replicate(test_data.bits)[: test_data.num_examples]
    v1, v2 = suppression.append_bits(v1, bits), suppression.append_bits(v2, bits)
  _, z1 = encode(setup, state, v1)
  _, z2 = encode(setup, state, v2)
  knn = functools.partial(
    evaluate.knn_accuracy,
    num_classes=num_classes,
    k=config.eval.knn_k,
    temperature=config.eval.knn_temperature,
  )

  def linear(train_labels, test_labels, classes):
    return evaluate.linear_probe(
      train_f,
      train_labels,
      test_f,
      test_labels,
      num_classes=classes,
      epochs=config.eval.linear_epochs,
      learning_rate=config.eval.linear_learning_rate,
      batch_size=config.eval.linear_batch_size,
      decay_epochs=config.eval.linear_decay_epochs,
      decay_factor=config.eval.linear_decay_factor,
      seed=config.seed,
    )

  results = {
    "knn_accuracy": knn(train_f, train_y, test_f, test_y),
    "linear_accuracy": linear(train_y, test_y, num_classes),
    "pixel_knn_accuracy": knn(
      np.asarray(train_x).reshape(len(train_y), -1),
      train_y,
      np.asarray(test_x).reshape(len(test_y), -1),
      test_y,
    ),
    **evaluate.representation_metrics(test_z, test_y, z1, z2),
  }
  if digit_labels is not None:
    digit_train, digit_test = digit_labels
    results["digit_knn_accuracy"] = knn(train_f, digit_train, test_f, digit_test, num_classes=10)
    results["digit_linear_accuracy"] = linear(digit_train, digit_test, 10)
  return results


def _log(writers, progress, pending, last_log, batch_size) -> list[float]:
  """Writes a logged step's metrics, member i's to writers[i]; returns the losses.

  Raises NonFiniteLossError on a NaN/inf loss.
  """
  step, metrics_ = pending
  values = jax.device_get(metrics_)
  _check_finite(step, values)
  elapsed = time.perf_counter() - last_log[1]
  rate = (step - last_log[0]) * batch_size / max(elapsed, 1e-9)
  losses_ = []
  for i, writer in enumerate(writers):
    scalars = {k: float(np.reshape(v, (len(writers),))[i]) for k, v in values.items()}
    scalars["images_per_s"] = rate
    writer.write(step, scalars)
    losses_.append(scalars["loss"])
  shown = " ".join(f"{x:.4f}" for x in losses_)
  progress.update(step, f"loss {shown} | {rate:.0f} img/s")
  return losses_
