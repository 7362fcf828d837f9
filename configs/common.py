"""The complete config every training config starts from, and argument parsing.

Every key the trainer reads is set here, so a typo in an override is an error
(configs are locked by run.py). Each config file edits a copy of `base()`.
"""

import ml_collections
from ml_collections import config_dict

from contrastive import sweep


def base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.job = "train"
  c.seed = 0
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
      name="contrastive",
      layout="simclr",
      temperature=0.2,
      num_hard=4095,
      hard_fraction=config_dict.placeholder(float),
      simple_weight=config_dict.placeholder(float),
      macl_alpha=0.5,
      macl_alignment_ref=0.0,
      macl_schedule="linear",
      distribution="logsumexp",
      weight=1.0,
      normalize=True,
      bank_momentum=0.5,
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
    )
  )
  # A grid of runs (see contrastive/sweep.py): override strings, one per run, each
  # trained in WORKDIR/<overrides>; population=True trains runs that differ only in
  # loss.temperature as one vmapped program; report names the writer of
  # WORKDIR/report.md (contrastive.report.REPORTS), "" for none.
  c.sweep = ml_collections.ConfigDict(dict(runs=(), population=False, report=""))
  return c


# Short argument names -> config keys, for `configs/NAME.py:loss=hard_contrastive,temperature=0.7`.
ARGUMENTS = {
  "loss": ("loss", "name"),
  "temperature": ("loss", "temperature"),
  "layout": ("loss", "layout"),
  "dataset": ("data", "name"),
  "epochs": ("train", "num_epochs"),
  "batch": ("data", "batch_size"),
  "bits": ("data", "randbit_bits"),
  "digits": ("data", "digits_pool"),
}


def apply_arguments(config: ml_collections.ConfigDict, arg: str | None):
  """Applies "k=v,k=v" (keys from ARGUMENTS) to `config`, converting to the key's type."""
  if not arg:
    return config
  for item in arg.split(","):
    key, sep, value = item.partition("=")
    if not sep or key not in ARGUMENTS:
      raise ValueError(f"Bad config argument {item!r}; use k=v with k in: {', '.join(ARGUMENTS)}.")
    section, field = ARGUMENTS[key]
    config[section][field] = sweep.parse_value(key, value, config[section][field])
  return config


SCALES = ("small", "paper")


def experiment_arguments(arg: str | None) -> dict:
  """An experiment config's "scale=...,k=v" as a dict; scale defaults to small."""
  args = dict(item.partition("=")[::2] for item in (arg or "").split(",") if item)
  args.setdefault("scale", "small")
  if args["scale"] not in SCALES:
    raise ValueError(f"Unknown scale {args['scale']!r}; valid: {', '.join(SCALES)}.")
  return args


def join_arguments(args: dict) -> str:
  return ",".join(f"{k}={v}" for k, v in args.items())


def experiment(arg: str | None, *, small, paper, runs, report: str):
  """A paper experiment's config: a sweep of `runs` with the report `report`.

  Args:
    arg: the config argument, "scale=small|paper" (default small) and any of
      `ARGUMENTS` (dataset=, epochs=, ...), applied last.
    small, paper: functions returning the base config of each scale.
    runs: the sweep's override strings.
    report: the name of its report writer (`contrastive.report.REPORTS`).
  """
  args = experiment_arguments(arg)
  c = small() if args.pop("scale") == "small" else paper()
  c.sweep.runs = tuple(runs)
  c.sweep.report = report
  return apply_arguments(c, join_arguments(args))
