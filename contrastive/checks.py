"""The checks of a training config: every impossible value one line, before any compute.

`check(config)` raises `config.ConfigError` naming the first mistake and what to
change. What belongs to one concept is checked in its home and called from here: a
loss's layout, tiled form and own keys (`objective.check`, from its `LossSpec`), the
temperature keys (`temperature.check`).
"""

import jax

from contrastive import config as config_lib
from contrastive import logs
from contrastive import models
from contrastive import objective
from contrastive import optim
from contrastive import temperature
from contrastive.data import augment
from contrastive.data import latent
from contrastive.data import sources
from contrastive.data import streaming

LOSS_SCALE_REFERENCES = ("none", "nt_xent")


def _check_loss_scale(config) -> None:
  loss = config.loss
  config_lib.check_choice("loss scale reference (loss.scale_reference)", loss.scale_reference,
          LOSS_SCALE_REFERENCES)  # fmt: skip
  if not loss.scale > 0:
    raise config_lib.ConfigError(f"loss.scale must be > 0, got {loss.scale}.")
  if loss.scale_reference == "none":
    return
  if loss.scale != 1.0:
    raise config_lib.ConfigError(
      "loss.scale and loss.scale_reference='nt_xent' both set the loss's scale; keep one "
      "(loss.scale=1.0 or loss.scale_reference='none')."
    )
  if not loss.scale_reference_temperature > 0:
    raise config_lib.ConfigError(
      f"loss.scale_reference_temperature must be > 0, got {loss.scale_reference_temperature}."
    )
  if "sweep" in config and config.sweep.population:
    raise config_lib.ConfigError(
      "loss.scale_reference calibrates one run's loss at its own temperature; set "
      "sweep.population=False."
    )


def _check_streamed(config) -> None:
  """What a dataset streamed from disk (`data.streaming`) cannot do."""
  name = config.data.name
  unsupported = {
    "data.randbit_bits": config.data.randbit_bits,
    "data.digits_pool": config.data.digits_pool,
    "data.train_examples": config.data.train_examples,
    "data.holdout_fraction": config.data.holdout_fraction,
    "sweep.population": "sweep" in config and config.sweep.population,
    "eval.monitor_every": config.eval.monitor_every,
    "loss.scale_reference": config.loss.scale_reference != "none" and config.loss.scale_reference,
  }
  for key, value in unsupported.items():
    if value:
      raise config_lib.ConfigError(
        f"{key}={value!r} needs an in-memory dataset; data.name={name!r} streams from "
        f"disk; unset {key}."
      )
  if config.data.batch_size % jax.process_count():
    raise config_lib.ConfigError(
      f"data.batch_size={config.data.batch_size} must be a multiple of the "
      f"{jax.process_count()} processes (each streams its share of a batch)."
    )


def _check_latent(config) -> None:
  """The latent test-bed's keys (`data.latent`), and what its vectors cannot do."""
  data = config.data
  if config.model.encoder != "mlp":
    raise config_lib.ConfigError(
      f"data.name={data.name!r} gives vectors, which model.encoder={config.model.encoder!r} "
      "cannot read; set model.encoder='mlp'."
    )
  counts = ("latent_dim", "latent_superclasses", "latent_classes", "latent_obs_dim",
            "latent_train", "latent_test")  # fmt: skip
  for key in counts:
    if not (isinstance(data[key], int) and data[key] >= 1):
      raise config_lib.ConfigError(f"data.{key} must be a whole number >= 1, got {data[key]!r}.")
  if data.latent_dim < 2:
    raise config_lib.ConfigError(f"data.latent_dim must be >= 2 (a sphere), got {data.latent_dim}.")
  for key in ("latent_class_spread", "latent_instance_spread", "latent_nuisance", "latent_augment"):
    if not data[key] >= 0:
      raise config_lib.ConfigError(f"data.{key} must be >= 0, got {data[key]}.")
  if not (isinstance(data.latent_nuisance_dim, int) and data.latent_nuisance_dim >= 0):
    raise config_lib.ConfigError(
      f"data.latent_nuisance_dim must be a whole number >= 0, got {data.latent_nuisance_dim!r}."
    )
  if data.train_examples:
    raise config_lib.ConfigError(
      "data.train_examples cuts image datasets; the latent test-bed's splits are "
      "data.latent_train and data.latent_test: set those instead."
    )
  if data.randbit_bits > latent.MAX_BITS:
    raise config_lib.ConfigError(
      f"data.randbit_bits must be <= {latent.MAX_BITS} on the latent test-bed, got "
      f"{data.randbit_bits}."
    )


def check(config) -> None:
  """Raises ConfigError on the first impossible value in a training config."""
  objective.check(config.loss)  # the loss's layout, tiled form and own keys
  config_lib.check_choice("optimizer (optimizer.name)", config.optimizer.name, optim.OPTIMIZERS)
  config_lib.check_choice(
    "schedule (optimizer.schedule)", config.optimizer.schedule, optim.SCHEDULES
  )
  config_lib.check_choice("encoder (model.encoder)", config.model.encoder, tuple(models.ENCODERS))
  config_lib.check_choice("dataset (data.name)", config.data.name, sources.names())
  if config.data.name in sources.STREAMING_DATASETS:
    _check_streamed(config)
  if config.data.name in sources.VECTOR_DATASETS:
    _check_latent(config)
  config_lib.check_choice(
    "augmentation (data.augment)", config.data.augment, tuple(augment.PRESETS)
  )
  config_lib.check_choice("model.dtype", config.model.dtype, tuple(models.DTYPES))
  if config.model.dtype == "float64" and not jax.config.jax_enable_x64:
    raise config_lib.ConfigError("model.dtype='float64' needs JAX_ENABLE_X64=1 in the environment.")
  temperature.check(config.loss, population="sweep" in config and config.sweep.population)
  _check_loss_scale(config)
  positive = {
    "data.batch_size": config.data.batch_size,
    "train.num_epochs": config.train.num_epochs,
    "optimizer.learning_rate": config.optimizer.learning_rate,
    "train.log_every": config.train.log_every,
    "eval.online_probe_learning_rate": config.eval.online_probe_learning_rate,
    "eval.monitor_examples": config.eval.monitor_examples,
  }
  for name, value in positive.items():
    if not value > 0:
      raise config_lib.ConfigError(f"{name} must be > 0, got {value}.")
  if not (isinstance(config.eval.monitor_every, int) and config.eval.monitor_every >= 0):
    raise config_lib.ConfigError(
      f"eval.monitor_every must be a whole number of steps >= 0 (0 = no kNN monitor), got "
      f"{config.eval.monitor_every!r}."
    )
  if config.data.digits_pool < 0 or config.data.digits_size < 0:
    raise config_lib.ConfigError(
      f"data.digits_pool and data.digits_size must be >= 0 (0 = off / unresized), got "
      f"{config.data.digits_pool} and {config.data.digits_size}."
    )
  if config.data.digits_pool and jax.process_count() > 1:
    raise config_lib.ConfigError(
      "data.digits_pool (digits on images) pastes digits on whole splits in one process; "
      "run it on a single host."
    )
  holdout = config.data.holdout_fraction
  if not (0 <= holdout < 1 and abs(100 * holdout - round(100 * holdout)) < 1e-9):
    raise config_lib.ConfigError(
      f"data.holdout_fraction must be a whole percent in [0, 1) (0 = evaluate on the test "
      f"split), got {holdout}."
    )
  if config.data.train_examples < 0:
    raise config_lib.ConfigError(
      f"data.train_examples must be >= 0 (0 = all), got {config.data.train_examples}."
    )
  devices = jax.device_count()
  if config.data.batch_size % devices:
    raise config_lib.ConfigError(
      f"data.batch_size={config.data.batch_size} is not divisible by the {devices} devices; "
      f"use a multiple of {devices}."
    )
  if not 0 <= config.loss.bank_momentum < 1:
    raise config_lib.ConfigError(
      f"loss.bank_momentum must be in [0, 1), got {config.loss.bank_momentum}."
    )


def check_data(config, data) -> None:
  """Checks `config` against its prepared data (`datasets.RunData`), before anything
  is written: ConfigError where the data cannot give what it asks, and a one-line
  warning on stderr where a value is legal but surely not meant."""
  n, name = data.train.num_examples, config.data.name
  batch = config.data.batch_size
  if batch > n:
    raise config_lib.ConfigError(
      f"data.batch_size={batch} is more than {name}'s {n:,} training examples; a batch "
      "must fit in one epoch."
    )
  height = data.image_shape[0]
  stored = not isinstance(data.train, streaming.StreamData) and data.latents is None
  if stored and config.data.image_size != height:
    raise config_lib.ConfigError(
      f"data.image_size={config.data.image_size}, but {name}'s images are {height} px and "
      f"are not resized (image_size is the crops' side); set data.image_size={height}."
    )
  objective.check_data(config.loss, batch, n)
  if config.eval.knn_k > n:
    logs.warn(
      f"eval.knn_k={config.eval.knn_k} is more than {name}'s {n:,} training examples: the "
      "kNN votes over all of them."
    )
