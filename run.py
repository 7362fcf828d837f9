"""Entry point: `python run.py --config=configs/NAME.py --workdir=DIR`.

Parses flags and hands the locked config to the library; nothing else lives here.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from contrastive import report

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Path to a config file in configs/.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs.")
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


# config.job -> what runs it.
JOBS = {"relative_penalty_figure": _relative_penalty_figure}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  config = _CONFIG.value
  if config.job not in JOBS:
    raise app.UsageError(f"Unknown job {config.job!r}; valid: {', '.join(JOBS)}.")
  JOBS[config.job](config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
