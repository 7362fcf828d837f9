"""The training config's schema: the complete base and one override parser.

Every key the trainer reads is set in `base()`, so a typo is an error, not a silent
default. Recipes (`contrastive.recipes`, `configs/`) edit a copy of it;
`checks.check` rejects impossible values before any compute, one line per mistake
(`ConfigError`); `apply` is the one parser of overrides, used alike by config
arguments (`configs/cifar10.py:loss=hard_contrastive,temperature=0.7`), sweep
runs ("loss.name=simple") and command-line flags (`--config.loss.temperature=0.5`).
`load_file` loads a config file as `run.py` does; `from_saved` reads the config a
run saved, merged over today's base so older runs load.
"""

import ast
import difflib
import importlib.util
import inspect
import itertools
import os

import ml_collections
from ml_collections import config_dict


class ConfigError(ValueError):
  """A config value or argument that cannot work; the message says what to change."""


def check_choice(what: str, value, valid) -> None:
  """Raises ConfigError unless `value` is one of `valid` (the message lists them)."""
  if value not in valid:
    raise ConfigError(f"Unknown {what} {value!r}; valid: {', '.join(valid)}.")


def base() -> ml_collections.ConfigDict:
  """The complete training config: every key the trainer reads, at its default."""
  c = ml_collections.ConfigDict()
  c.job = "train"
  c.seed = 0
  # The config file (and argument) it came from, as given to run.py; set by `load_file`.
  c.config_file = ""
  c.data = ml_collections.ConfigDict(
    dict(
      name="shapes",
      data_dir="",
      batch_size=128,
      image_size=32,
      augment="simclr_cifar",
      randbit_bits=0,
      digits_pool=0,  # digits on images: paste one of the first k digits on each image (0 = off)
      digits_size=0,  # resize those digits to this side in pixels (0 = unresized, 28)
      train_examples=0,  # use only the first N training examples (0 = all)
      # f > 0: the last fraction f of those are held out and evaluated on instead of
      # the test split (a validation split, for choosing hyperparameters; in whole
      # percents); 0: the test split.
      holdout_fraction=0.0,
      # Generates the procedural datasets and draws the pasted digits; the run's own
      # `seed` (initialisation, batches, augmentation) varies across seeds=N, this not.
      seed=0,
      # The latent test-bed (data.name="latent"; `contrastive.data.latent`, whose
      # docstring gives the design): content latents on S^(latent_dim - 1) in
      # latent_superclasses x latent_classes classes (a class centre's and an
      # instance's spread around its parent), a style nuisance each view redraws, a
      # view's perturbation of the content, a random leaky-ReLU renderer to
      # latent_obs_dim; latent_train + latent_test instances. data.randbit_bits and
      # data.digits_pool add its shortcut features.
      latent_dim=8,
      latent_superclasses=5,
      latent_classes=4,
      latent_class_spread=0.6,
      latent_instance_spread=0.3,
      latent_nuisance_dim=8,
      latent_nuisance=1.0,
      latent_augment=0.1,
      latent_obs_dim=64,
      latent_train=10_240,
      latent_test=2_048,
    )
  )
  c.model = ml_collections.ConfigDict(
    dict(
      encoder="resnet18",
      stem="cifar",
      width=64,
      out_dim=128,
      hidden_dim=512,
      head_depth=2,
      dtype="float32",
    )
  )
  c.loss = ml_collections.ConfigDict(
    dict(
      # objective.SPECS: contrastive, hard_contrastive, simple, hard_simple, macl, dcl,
      # generalized.
      name="contrastive",
      layout="simclr",
      temperature=0.2,
      # tau as a function of the step (temperature.SCHEDULES): "constant"
      # (loss.temperature); "cosine", Kukleva et al. (ICLR 2023): tau_min + (tau_max -
      # tau_min) (1 + cos(pi e / half_period)) / 2 at epoch e (their defaults 0.1,
      # 1.0, 200); "linear": from tau_max down to loss.temperature over warm epochs.
      temperature_schedule="constant",
      temperature_min=0.1,
      temperature_max=1.0,
      temperature_half_period_epochs=200.0,
      temperature_warm_epochs=10.0,
      # "global": tau = exp(log_tau), one learned parameter (as CLIP's logit scale),
      # from loss.temperature, Adam at temperature_learning_rate, log_tau clipped to
      # [log temperature_min, log temperature_max] after each step; "none": not learned.
      temperature_learned="none",
      temperature_learning_rate=1e-3,
      # "per_sample": tau_i per training instance (a row each, like the memory bank),
      # moved by iSogCLR's rule (Qiu et al., ICML 2023; temperature.update_sample_
      # temperatures), the defaults their unimodal code's: DRO radius rho, the
      # moving estimate's weight gamma, momentum beta_u, step eta; clipped to
      # [temperature_min, temperature_max] (theirs 0.05, 1.0; they start at 0.1).
      temperature_rho=0.4,
      temperature_gamma=0.8,
      temperature_momentum=0.5,
      temperature_sample_learning_rate=0.03,
      num_hard=4095,
      hard_fraction=config_dict.placeholder(float),
      simple_weight=config_dict.placeholder(float),
      macl_alpha=0.5,
      macl_alignment_ref=0.0,
      macl_schedule="linear",
      distribution="logsumexp",
      weight=1.0,
      normalize=True,
      # The loss is multiplied by `scale` (Chen et al.'s notebooks' loss_scaling), or,
      # with scale_reference="nt_xent", by the factor that gives it NT-Xent's gradient
      # norm (at scale_reference_temperature) at initialisation, on the first batch
      # (`build.calibrate_loss_scale`): the generalized losses' gradients are ~tau/d of
      # NT-Xent's, so one SGD learning rate would starve them.
      scale=1.0,
      scale_reference="none",
      scale_reference_temperature=0.2,
      bank_momentum=0.5,
      # None: the dense kernels; an integer: the losses with a tiled form (a LossSpec's
      # tiled_layouts: NT-Xent, the hard contrastive loss, MACL, DCL and the generalized
      # loss, SimCLR or cross-view layout) over tiles of this side, memory O(B D +
      # block_size^2).
      block_size=config_dict.placeholder(int),
    )
  )
  c.optimizer = ml_collections.ConfigDict(
    dict(
      name="sgd",
      learning_rate=0.03,
      momentum=0.9,
      weight_decay=5e-4,
      exclude_bn_and_bias=False,
      schedule="step",
      warmup_epochs=0.0,
      decay_epochs=(160, 190),
      decay_factor=0.1,
    )
  )
  c.train = ml_collections.ConfigDict(
    dict(
      num_epochs=200, log_every=50, tensorboard=True, checkpoint_every=1000, checkpoints_to_keep=3
    )
  )
  c.eval = ml_collections.ConfigDict(
    dict(
      knn_k=200,
      knn_temperature=0.1,
      linear_epochs=100,
      linear_learning_rate=30.0,
      linear_batch_size=256,
      linear_decay_epochs=(40, 60, 80),
      linear_decay_factor=0.2,
      # Training-time probes; neither changes the backbone's updates. online_probe: a
      # linear classifier on the encoder's stop-gradient features of the training views,
      # trained alongside (SGD, momentum 0.9, at online_probe_learning_rate; logged as
      # probe_loss and probe_accuracy; results.json's online_linear_accuracy). A kNN
      # monitor every monitor_every steps (0: off): the first monitor_examples test
      # images against as many training images, logged as knn_monitor.
      online_probe=False,
      online_probe_learning_rate=0.1,
      monitor_every=0,
      monitor_examples=1000,
    )
  )
  # A grid of runs (contrastive.sweep): override strings, one per run, each trained
  # in WORKDIR/<overrides>; population=True trains runs that differ only in
  # loss.temperature as one vmapped program; report names the paper study
  # (contrastive.experiments.names()) whose WORKDIR/report.md is written at the end.
  # inputs: other sweeps' directories the report reads (e.g. the selection stage whose
  # chosen hyperparameters the runs use).
  c.sweep = ml_collections.ConfigDict(dict(runs=(), population=False, report="", inputs=()))
  return c


# ----------------------------------------------------------------------------------
# Overrides: "key=value,key=value", keys full ("loss.temperature") or short.

# Short names -> full keys, for `configs/NAME.py:loss=hard_contrastive,temperature=0.7`.
SHORT_NAMES = {
  "loss": "loss.name",
  "temperature": "loss.temperature",
  "layout": "loss.layout",
  "dataset": "data.name",
  "epochs": "train.num_epochs",
  "batch": "data.batch_size",
  "bits": "data.randbit_bits",
  "digits": "data.digits_pool",
}


def parse(text: str | None) -> list[tuple[str, str]]:
  """ "k=v,k=v" as (key, value text) pairs, in order; keys are not resolved yet.

  A value may hold commas inside brackets: "optimizer.decay_epochs=(10, 20)".
  """
  pairs, depth, item = [], 0, ""
  for char in (text or "") + ",":
    depth += (char in "([") - (char in ")]")
    if char == "," and depth == 0:
      if item.strip():
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
          raise ConfigError(f"Bad override {item.strip()!r}: use key=value.")
        pairs.append((key.strip(), value.strip()))
      item = ""
    else:
      item += char
  return pairs


def _parent_and_field(config, key: str):
  """The ConfigDict holding `key` ("a.b.c" or a short name) and the field's name."""
  full = SHORT_NAMES.get(key, key) if "." not in key else key
  *path, field = full.split(".")
  node = config
  for part in path:
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      break
    node = node[part]
  else:
    if isinstance(node, ml_collections.ConfigDict) and field in node:
      return node, field
  named = f"{full!r} (short for it: {key!r})" if full != key else repr(full)
  close = difflib.get_close_matches(full, _keys(config), n=1)
  if close:
    hint = f"; did you mean {close[0]!r}?"
  elif "." not in key and "loss" in config:
    hint = f"; short names: {', '.join(SHORT_NAMES)}."
  else:
    hint = "."
  raise ConfigError(f"No config key {named}{hint}")


def _keys(config, prefix: str = "") -> list[str]:
  """Every leaf key of `config`, dotted ("loss.temperature")."""
  keys = []
  for name, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      keys += _keys(value, f"{prefix}{name}.")
    else:
      keys.append(prefix + name)
  return keys


def typed_value(key: str, text: str, current, kind):
  """The text `text` for config key `key`, typed like its `current` value (or `kind`)."""
  kind = type(current) if current is not None else kind
  try:
    if kind is bool:
      if text not in ("True", "False", "true", "false"):
        raise ValueError
      return text in ("True", "true")
    if kind is int:
      return int(text)
    if kind is float:
      return float(text)
    if kind in (tuple, list):
      value = ast.literal_eval(text) if text else ()
      return tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if kind is str:
      return text
    if kind is None or kind is type(None):  # an unset placeholder of no declared type
      try:
        return float(text)
      except ValueError:
        return text
  except (ValueError, SyntaxError):
    name = {bool: "True or False", int: "an integer", float: "a number"}.get(kind, kind.__name__)
    raise ConfigError(f"{key}={text}: expected {name}.") from None
  raise ConfigError(f"{key} holds a {kind.__name__}, which cannot be set from the command line.")


def apply(config, overrides) -> ml_collections.ConfigDict:
  """Sets each (key, value text) pair (or a "k=v,k=v" string) on `config`, in place.

  Keys are full ("loss.temperature", "num_points") or `SHORT_NAMES`; each value is
  typed like the field it replaces; "None" unsets a field that may be unset
  (`loss.block_size=None`: the dense kernel). Raises ConfigError naming the first bad
  pair.
  """
  if overrides is None or isinstance(overrides, str):
    overrides = parse(overrides)
  for key, text in overrides:
    parent, field = _parent_and_field(config, key)
    kind = parent.get_type(field)
    if text == "None" and kind is not str:
      if parent[field] is not None and not _unset_by_default(key):
        raise ConfigError(f"{key}=None: this key cannot be unset; give it a value.")
      parent[field] = None
      continue
    parent[field] = typed_value(key, text, parent[field], kind)
  return config


def _unset_by_default(key: str) -> bool:
  """Whether the config key `key` (full or short) defaults to None (unset) in `base()`."""
  node = base()
  for part in (SHORT_NAMES.get(key, key) if "." not in key else key).split("."):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      return False
    node = node[part]
  return node is None


def grid(**axes) -> tuple[str, ...]:
  """Override strings for the product of `axes` (section__field=values).

  Example: grid(loss__temperature=(0.1, 0.2), loss__name=("contrastive",)) ->
  ("loss.temperature=0.1,loss.name=contrastive", "loss.temperature=0.2,...").
  """
  keys = [k.replace("__", ".") for k in axes]
  return tuple(
    ",".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
    for values in itertools.product(*axes.values())
  )


def with_overrides(config, overrides: str) -> ml_collections.ConfigDict:
  """A locked copy of `config` with `overrides` applied and no sweep runs: one run's config."""
  run_config = config.copy_and_resolve_references()
  run_config.unlock()
  run_config.sweep.runs = ()
  run_config.lock()
  return apply(run_config, overrides)


# ----------------------------------------------------------------------------------
# Loading: a config file as run.py does, a saved run's config.


def load_file(spec: str, overrides=()) -> ml_collections.ConfigDict:
  """The config of `spec` ("PATH.py" or "PATH.py:ARG"), with `overrides` applied, locked.

  Calls the file's `get_config(ARG)` (or `get_config()` without ARG). Raises
  ConfigError in one line for a missing file, a file without `get_config`, a bad
  argument, or an override of a key that does not exist.
  """
  path, sep, arg = spec.partition(".py:")
  path = path + ".py" if sep else spec
  if not os.path.isfile(path):
    raise ConfigError(f"No config file {path!r} (--config); pass configs/NAME.py[:ARGUMENTS].")
  module_spec = importlib.util.spec_from_file_location(
    "config_" + os.path.splitext(os.path.basename(path))[0], path
  )
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"{path} has no get_config(); a config file defines one.")
  if arg and not inspect.signature(module.get_config).parameters:
    raise ConfigError(
      f"{path} takes no argument; drop ':{arg}' (override keys with --config.KEY=V)."
    )
  try:
    loaded = module.get_config(arg) if arg else module.get_config()
  except ValueError as e:  # ConfigError included: a bad argument
    raise ConfigError(f"{path}:{arg}: {e}") from None
  if "config_file" in loaded:
    loaded.config_file = spec
  loaded = apply(loaded, overrides)
  loaded.lock()
  return loaded


def from_saved(saved: dict) -> ml_collections.ConfigDict:
  """The config a run saved (results.json's "config"), merged over today's `base()`.

  Keys added since the run was saved take their defaults (so every key the trainer
  reads is there); JSON lists become tuples where the base has tuples.
  """
  config = base()

  def merge(node, values):
    for key, value in values.items():
      if key not in node:
        continue  # a key this version no longer reads
      if isinstance(node[key], ml_collections.ConfigDict) and isinstance(value, dict):
        merge(node[key], value)
      elif isinstance(node[key], tuple) and isinstance(value, list):
        node[key] = tuple(value)
      else:
        node[key] = value

  merge(config, saved)
  return config
