"""The command line: `python run.py --config=configs/NAME.py[:ARGS] --workdir=DIR
[--config.KEY=V]`, or from an installed copy `contrastive train ...` (also
`contrastive-run ...` and `python -m contrastive ...`), with a config file from a
checkout or your own; `contrastive list` prints what there is to run, `contrastive
plot DIR` draws a finished run or sweep (`contrastive.plot`).

Parses flags, loads the config and hands it to the library (`contrastive.jobs`);
nothing else lives here. A mistake on the command line (an unknown flag or config
key, a bad value, a missing config file) prints one line and exits 2, before
anything is written. Library INFO logging stays off unless --verbosity asks for it.
"""

import os
import sys
import textwrap

from absl import app
from absl import flags
from absl import logging as absl_logging

from contrastive import build
from contrastive import checkpoint
from contrastive import config as config_lib
from contrastive import jobs
from contrastive import plot
from contrastive import step as step_lib

_CONFIG = flags.DEFINE_string(
  "config",
  None,
  "configs/NAME.py[:ARGUMENTS]; override any key with --config.KEY=VALUE (e.g. "
  "--config.loss.temperature=0.5).",
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
_COMPILATION_CACHE = flags.DEFINE_string(
  "compilation_cache",
  "",
  "Directory of JAX's persistent compilation cache, so resumed runs and a sweep's "
  "runs reuse compiled programs (default: $CONTRASTIVE_CACHE/jax, else "
  "~/.cache/contrastive/jax); 'off' compiles every program afresh.",
)

_OVERRIDE = "--config."
_overrides: list[tuple[str, str]] = []


def _fail(message: str):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def flat_keys(config, prefix=""):
  """(key, default) of every key of `config`, depth first."""
  for key, value in config.items():
    if hasattr(value, "items"):
      yield from flat_keys(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def help_text(root: str = ".") -> str:
  """What --help prints: the usage, the config files under `root`/configs, the studies
  and their scales, the short names, the losses, every config key at its default, and
  this command's flags."""
  from contrastive import experiments
  from contrastive import objective

  configs = os.path.join(root, "configs")

  def analysis(name):  # a study without training runs (its config's job)
    try:
      return experiments.get(name).get_config().get("job") == "analysis"
    except config_lib.ConfigError:  # a study with no default scale trains
      return False

  analyses = [n for n in experiments.names() if analysis(n)]

  def listed(folder):
    if not os.path.isdir(folder):
      return "none here (a checkout of the repository has them)"
    return ", ".join(sorted(f for f in os.listdir(folder) if f.endswith(".py") and f[0] != "_"))

  wrap = lambda text: textwrap.fill(text, 88, initial_indent="  ", subsequent_indent="    ")
  lines = [
    "usage: python run.py --config=configs/NAME.py[:ARGUMENTS] --workdir=DIR "
    "[--config.KEY=VALUE ...]",
    "",
    "Trains the config's run (or sweep, or analysis) into DIR; rerun the same command to resume.",
    "",
    "Config files (configs/):",
    wrap(listed(configs)),
    "Paper studies (configs/experiments/NAME.py:scale=SCALE,seeds=N; scales latent, small, "
    "medium, paper):",
    wrap(
      ", ".join(n for n in experiments.names() if n not in analyses)
      + "; analyses without training: "
      + ", ".join(f"configs/{n}.py" for n in analyses)
    ),
    "Short names in a config's ARGUMENTS (e.g. :loss=hard_contrastive,temperature=0.7):",
    wrap(", ".join(f"{k}={v}" for k, v in config_lib.SHORT_NAMES.items())),
    "Losses (loss.name):",
    *(wrap(f"{name}: {spec.description}") for name, spec in objective.SPECS.items()),
    "Keys (--config.KEY=VALUE), at their defaults (documented in contrastive/config.py):",
  ]
  sections: dict[str, list[str]] = {}
  for key, value in flat_keys(config_lib.base()):
    section = key.split(".")[0] if "." in key else ""
    sections.setdefault(section, []).append(f"{key}={value!r}")
  lines += [wrap("  ".join(items)) for items in sections.values()]
  lines += ["Flags:"]
  for flag in (_CONFIG, _WORKDIR, _COMPILATION_CACHE, _DISTRIBUTED, _COORDINATOR,
               _NUM_PROCESSES, _PROCESS_ID):  # fmt: skip
    lines.append(wrap(f"--{flag.name}: {flags.FLAGS[flag.name].help}"))
  lines.append("  --helpfull: every flag, the libraries' too.")
  return "\n".join(lines)


def _parse_flags(argv):
  """absl's flags, with --config.KEY=VALUE overrides set aside for `config.apply`."""
  if any(arg in ("--help", "-h", "--helpshort", "-?") for arg in argv[1:]):
    print(help_text())
    sys.exit(0)
  rest = [argv[0]]
  for arg in argv[1:]:
    if arg.startswith(_OVERRIDE):
      key, sep, value = arg[len(_OVERRIDE) :].partition("=")
      if not sep:
        _fail(f"{arg}: write config overrides as --config.KEY=VALUE.")
      _overrides.append((key, value))
    else:
      rest.append(arg)
  try:
    args = flags.FLAGS(rest)
  except flags.Error as e:
    _fail(f"{e}; see --help.")
  missing = [f"--{name}" for name in ("config", "workdir") if flags.FLAGS[name].value is None]
  if missing:
    _fail(f"{' and '.join(missing)} required: python run.py --config=configs/NAME.py --workdir=DIR")
  return args


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}")
  if not flags.FLAGS["verbosity"].present:
    # Libraries' INFO logging (Orbax's at every checkpoint, absl's, TensorFlow's) is
    # off by default; warnings and errors pass. --verbosity=0 or 1 brings it back.
    absl_logging.set_verbosity(absl_logging.WARNING)
  try:
    config = config_lib.load_file(_CONFIG.value, _overrides)
  except config_lib.ConfigError as e:
    _fail(str(e))
  if _DISTRIBUTED.value:
    build.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if _COMPILATION_CACHE.value != "off":
    step_lib.enable_compilation_cache(_COMPILATION_CACHE.value or None)
  try:
    jobs.run(config, _WORKDIR.value)
  except jobs.USER_ERRORS as e:
    _fail(str(e))
  except KeyboardInterrupt:  # Ctrl-C outside training's steps, or twice within them
    print(
      f"interrupted: the checkpoints and results already in {_WORKDIR.value} are intact; "
      "rerun the same command to resume.",
      file=sys.stderr,
    )
    sys.exit(130)
  except OSError as e:  # a log or result the storage refused: a full disk, a quota
    reason = checkpoint.storage_failure(e)
    if reason is None:
      raise
    _fail(
      f"cannot write {e.filename or _WORKDIR.value}: {reason}; the checkpoints already saved "
      "are intact; free space (or make the workdir writable) and rerun the same command to "
      "resume."
    )


def run() -> None:
  """The command's entry point (run.py, `contrastive-run`, `python -m contrastive`)."""
  app.run(main, flags_parser=_parse_flags)


# `contrastive COMMAND`: what each does.
COMMANDS = {
  "train": "contrastive train --config=configs/NAME.py[:ARGUMENTS] --workdir=DIR "
  "[--config.KEY=VALUE ...]: a run, sweep or study (as python run.py; --help for the keys)",
  "list": "contrastive list: the config files here, the paper studies, the losses and "
  "every config key at its default",
  "plot": "contrastive plot DIR [DIR ...] [--runs]: a finished run's curves.png or a "
  "sweep's sweep.png",
}


def command(argv=None) -> None:
  """The installed `contrastive` command: train, list or plot."""
  argv = sys.argv if argv is None else argv
  name, rest = (argv[1], argv[2:]) if len(argv) > 1 else (None, [])
  if name == "train":
    sys.argv = ["contrastive train", *rest]
    run()
  elif name == "list":
    print(help_text())
  elif name == "plot":
    sys.exit(plot.main(rest))
  elif name in (None, "-h", "--help", "help"):
    print("usage:\n" + "\n".join(f"  {usage}" for usage in COMMANDS.values()))
    sys.exit(0 if name else 2)
  else:
    _fail(f"unknown command {name!r}; valid: {', '.join(COMMANDS)} (contrastive --help).")
