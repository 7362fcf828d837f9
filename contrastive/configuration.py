"""Checks a training config before any compute: one clear line per mistake.

`run.py` prints a `ConfigError`'s message and exits 2, with no traceback; nothing
in the workdir is touched before the config passes.
"""

import jax

from contrastive import losses
from contrastive import models
from contrastive import report
from contrastive import train
from contrastive.data import augment
from contrastive.data import sources


class ConfigError(ValueError):
  """A config value that cannot work; the message says what to change."""


def _choice(what: str, value, valid) -> None:
  if value not in valid:
    raise ConfigError(f"Unknown {what} {value!r}; valid: {', '.join(valid)}.")


def check(config) -> None:
  """Raises ConfigError on the first impossible value in a training config."""
  _choice("loss (loss.name)", config.loss.name, train.LOSS_NAMES)
  _choice("negative layout (loss.layout)", config.loss.layout, train.LAYOUTS)
  _choice("optimizer (optimizer.name)", config.optimizer.name, train.OPTIMIZERS)
  _choice("schedule (optimizer.schedule)", config.optimizer.schedule, train.SCHEDULES)
  _choice("encoder (model.encoder)", config.model.encoder, tuple(models.ENCODERS))
  _choice("dataset (data.name)", config.data.name, sources.names())
  _choice("augmentation (data.augment)", config.data.augment, tuple(augment.PRESETS))
  _choice("model.dtype", config.model.dtype, tuple(train.MODEL_DTYPES))
  if config.sweep.report:
    _choice("report (sweep.report)", config.sweep.report, tuple(report.REPORTS))
  if config.model.dtype == "float64" and not jax.config.jax_enable_x64:
    raise ConfigError("model.dtype='float64' needs JAX_ENABLE_X64=1 in the environment.")
  if config.loss.name == "generalized":
    _choice(
      "distribution (loss.distribution)",
      config.loss.distribution,
      tuple(losses.GENERALIZED_DISTRIBUTIONS),
    )
  if not config.loss.temperature > 0:
    raise ConfigError(f"loss.temperature must be > 0, got {config.loss.temperature}.")
  positive = {
    "data.batch_size": config.data.batch_size,
    "train.num_epochs": config.train.num_epochs,
    "optimizer.learning_rate": config.optimizer.learning_rate,
    "train.log_every": config.train.log_every,
  }
  for name, value in positive.items():
    if not value > 0:
      raise ConfigError(f"{name} must be > 0, got {value}.")
  if config.data.digits_pool < 0 or config.data.digits_size < 0:
    raise ConfigError(
      f"data.digits_pool and data.digits_size must be >= 0 (0 = off / unresized), got "
      f"{config.data.digits_pool} and {config.data.digits_size}."
    )
  if config.data.digits_pool and jax.process_count() > 1:
    raise ConfigError(
      "data.digits_pool (digits on images) pastes digits on whole splits in one process; "
      "run it on a single host."
    )
  if config.data.train_examples < 0:
    raise ConfigError(
      f"data.train_examples must be >= 0 (0 = all), got {config.data.train_examples}."
    )
  devices = jax.device_count()
  if config.data.batch_size % devices:
    raise ConfigError(
      f"data.batch_size={config.data.batch_size} is not divisible by the {devices} devices; "
      f"use a multiple of {devices}."
    )
  if config.loss.layout == "memory_bank" and config.loss.name == "generalized":
    raise ConfigError("loss.name='generalized' uses in-batch views; set loss.layout='simclr'.")
  if not 0 <= config.loss.bank_momentum < 1:
    raise ConfigError(f"loss.bank_momentum must be in [0, 1), got {config.loss.bank_momentum}.")
  if config.loss.name == "macl":
    try:
      losses.check_macl_schedule(
        config.loss.macl_schedule, config.loss.macl_alpha, config.loss.macl_alignment_ref
      )
    except ValueError as e:
      raise ConfigError(str(e)) from None
