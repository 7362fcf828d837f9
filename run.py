"""Entry point: `python run.py --config=configs/NAME.py --workdir=DIR`.

Parses flags and hands the locked config to the library; nothing else lives here.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from contrastive import configuration
from contrastive import report
from contrastive import sweep
from contrastive import train
from contrastive.data import sources

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Path to a config file in configs/.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs.")
_DISTRIBUTED = flags.DEFINE_bool(
  "distributed",
  False,
  "Call jax.distributed.initialize() first (several hosts; on Cloud TPU it finds its peers).",
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address", None, "host:port of process 0, where not auto-detected."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes, if not auto-detected.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, if not detected.")
flags.mark_flags_as_required(["config", "workdir"])


def _relative_penalty_figure(config, workdir):
  paths = report.write_relative_penalty_figure(
    workdir,
    temperatures=config.temperatures,
    num_points=config.num_points,
    entropy_temperatures=config.entropy_temperatures,
  )
  for name, path in paths.items():
    print(f"{name}: {path}")


_SUMMARY_KEYS = (
  "knn_accuracy",
  "linear_accuracy",
  "pixel_knn_accuracy",
  "uniformity",
  "tolerance",
  "alignment",
  "final_loss",
  "wall_time_s",
)


def _print_results(results, path):
  for key in _SUMMARY_KEYS:
    value = results[key]
    print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
  print(f"results: {path}")


def _train(config, workdir):
  if config.sweep.runs:
    try:
      runs = sweep.expand(config)
    except ValueError as e:
      raise configuration.ConfigError(str(e)) from None
    print(f"sweep of {len(runs)} runs in {workdir}")
    sweep.run(
      config,
      workdir,
      check=configuration.check,
      on_result=lambda name, r: _print_results(r, f"{workdir}/{name}/results.json"),
    )
    print(f"sweep: {workdir}/{sweep.SWEEP_FILE}")
    return
  configuration.check(config)
  _print_results(train.train_and_evaluate(config, workdir), f"{workdir}/results.json")


# config.job -> what runs it.
JOBS = {"relative_penalty_figure": _relative_penalty_figure, "train": _train}

# Errors that are the user's to fix: printed as one line, no traceback, exit 2.
USER_ERRORS = (configuration.ConfigError, sources.DatasetNotPreparedError, train.NonFiniteLossError)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if _DISTRIBUTED.value:
    import jax  # noqa: PLC0415

    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  config = _CONFIG.value
  if config.job not in JOBS:
    raise app.UsageError(f"Unknown job {config.job!r}; valid: {', '.join(JOBS)}.")
  try:
    JOBS[config.job](config, _WORKDIR.value)
  except USER_ERRORS as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
