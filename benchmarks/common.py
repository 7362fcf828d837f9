"""What every benchmark script shares: the repeats check and the machine header."""

import json
import os
import platform

import jax


def check_repeats(parser, repeats: int) -> None:
  """Medians of fewer than 5 runs are noise: refuse them."""
  if repeats < 5:
    parser.error("--repeats must be >= 5 for a meaningful median.")


def machine() -> str:
  """One line naming the device, the host's cores and the software versions."""
  device = jax.devices()[0]
  return (
    f"device: {device.device_kind} ({device.platform}) x{jax.device_count()}, "
    f"{os.cpu_count()} CPU cores, jax {jax.__version__}, {platform.python_version()}"
  )


def write_json(path: str | None, result) -> None:
  """Writes `result` to `path` (the --json flag) as indented JSON; nothing if no path."""
  if path:
    with open(path, "w") as f:
      json.dump(result, f, indent=1)
