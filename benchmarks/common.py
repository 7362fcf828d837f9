"""What every benchmark script shares: the repeats check and the machine header."""

import datetime
import json
import os
import platform
import subprocess
import sys


def check_repeats(parser, repeats: int) -> None:
  """Medians of fewer than 5 runs are noise: refuse them."""
  if repeats < 5:
    parser.error("--repeats must be >= 5 for a meaningful median.")


def machine() -> str:
  """One line naming the device, the host's cores and the software versions."""
  import jax  # noqa: PLC0415 (the torch peers' environment has no jax; they call stamp only)

  device = jax.devices()[0]
  return (
    f"device: {device.device_kind} ({device.platform}) x{jax.device_count()}, "
    f"{os.cpu_count()} CPU cores, jax {jax.__version__}, {platform.python_version()}"
  )


def stamp() -> dict:
  """What a result file records of how it was made: the command, the date (UTC) and the
  code version (the checkout's commit, "+dirty" with uncommitted changes outside
  benchmarks/results/)."""
  here = os.path.dirname(os.path.abspath(__file__))
  git = lambda *a: subprocess.run(["git", *a], cwd=here, capture_output=True, text=True).stdout
  commit = git("rev-parse", "--short=10", "HEAD").strip()
  # Other result files written beside this one are outputs, not code.
  status = git(
    "status", "--porcelain", "--untracked-files=no", "--", ":(top,exclude)benchmarks/results"
  )
  dirty = bool(status.strip())
  return {
    "command": "python " + " ".join(sys.argv),
    "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
    "code": (commit + ("+dirty" if dirty else "")) if commit else "unknown",
  }


def write_json(path: str | None, result) -> None:
  """Writes `result` (a dict, or rows) to `path` (the --json flag) as indented JSON with
  its `stamp` (benchmarks/report.py puts it under the file's table); nothing if no path."""
  if path:
    body = result if isinstance(result, dict) else {"rows": result}
    stamped = {**stamp(), **body}  # before opening: a truncated tracked file reads as a change
    with open(path, "w") as f:
      json.dump(stamped, f, indent=1)
