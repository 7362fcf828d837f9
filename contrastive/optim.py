"""Optimisers and learning-rate schedules, as the papers' recipes use them.

SGD + momentum with coupled L2 (Wang & Liu, as PyTorch's `SGD(weight_decay=...)`),
LARS (SimCLR) and Adam with coupled L2 (the RandBit notebook's Keras regulariser);
constant, step, warmup + cosine and linear-decay schedules.
"""

import functools

import jax
import optax

SCHEDULES = ("constant", "step", "warmup_cosine", "linear")


def learning_rate_schedule(cfg, steps_per_epoch: int, num_steps: int):
  """The schedule the config's optimizer section names, as a function of the step."""
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


def decay_mask(params, *, exclude_bn_and_bias: bool):
  """True for the parameters weight decay applies to: all, or only kernels."""
  # Kernels are >= 2-D; biases and BatchNorm scales/offsets are 1-D.
  return jax.tree.map(lambda p: p.ndim > 1 or not exclude_bn_and_bias, params)


def _sgd(cfg, schedule, mask):  # coupled L2, as PyTorch's SGD(weight_decay=...)
  return optax.chain(
    optax.add_decayed_weights(cfg.weight_decay, mask), optax.sgd(schedule, momentum=cfg.momentum)
  )


def _lars(cfg, schedule, mask):
  return optax.lars(
    schedule,
    weight_decay=cfg.weight_decay,
    weight_decay_mask=mask,
    trust_ratio_mask=mask,
    momentum=cfg.momentum,
  )


def _adam(cfg, schedule, mask):  # coupled L2, as a Keras kernel regulariser
  return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask), optax.adam(schedule))


# optimizer.name -> (optimizer config, schedule, weight-decay mask) -> the transformation.
_OPTIMIZERS = {"sgd": _sgd, "lars": _lars, "adam": _adam}
OPTIMIZERS = tuple(_OPTIMIZERS)


def create_optimizer(cfg, schedule) -> optax.GradientTransformation:
  """SGD + momentum (Wang & Liu), LARS (SimCLR) or Adam (RandBit), with weight decay."""
  if cfg.name not in _OPTIMIZERS:
    raise ValueError(f"Unknown optimizer {cfg.name!r}; valid: {', '.join(OPTIMIZERS)}.")
  mask = functools.partial(decay_mask, exclude_bn_and_bias=cfg.exclude_bn_and_bias)
  return _OPTIMIZERS[cfg.name](cfg, schedule, mask)
