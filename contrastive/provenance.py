"""Where a result came from: the code's version, the libraries, the device, the times.

Runs are deterministic on one machine, not across machines (XLA's code differs), so
two results are comparable only with this beside them. `segment()` describes the
process that runs now; a run's `results.json` holds one per segment (a resumed
run's earlier segments are kept in WORKDIR/provenance.json as they start), and
reports say so when the runs of one table come from different code or devices.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess

import jax

from contrastive import paths

FILE = "provenance.json"
PACKAGES = (
  "jax",
  "jaxlib",
  "flax",
  "optax",
  "orbax-checkpoint",
  "tensorflow-datasets",
  "numpy",
)


def _git(directory: str, *args) -> str | None:
  try:
    proc = subprocess.run(
      ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10, check=False
    )
  except (OSError, subprocess.SubprocessError):
    return None
  return proc.stdout.strip() if proc.returncode == 0 else None


def code(directory: str | None = None) -> dict:
  """The code's version: {"commit", "dirty"} when `directory` (default: this
  package's parent) is in a git checkout, else {"version"} of the installed package."""
  directory = directory or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  commit = _git(directory, "rev-parse", "HEAD")
  if commit:
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}
  try:
    return {"version": importlib.metadata.version("contrastive")}
  except importlib.metadata.PackageNotFoundError:
    return {"version": "unknown"}


def _version(package: str) -> str:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return "absent"


def now() -> str:
  return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def segment(start_step: int) -> dict:
  """This process's provenance, for a segment of a run starting at `start_step`."""
  device = jax.devices()[0]
  return {
    "code": code(),
    "python": platform.python_version(),
    "packages": {p: _version(p) for p in PACKAGES},
    "platform": device.platform,
    "device_kind": device.device_kind,
    "device_count": jax.device_count(),
    "process_count": jax.process_count(),
    "host": platform.node(),
    "start_step": int(start_step),
    "started": now(),
  }


def begin(workdir: str, start_step: int) -> list[dict]:
  """Records a new segment in WORKDIR/provenance.json (the segments before it that
  reached `start_step` are kept; one that started later was redone) and returns all."""
  segments = [s for s in _read(workdir) if s["start_step"] < start_step]
  segments.append(segment(start_step))
  paths.write_text(paths.path(workdir, FILE), json.dumps(segments, indent=1))
  return segments


def finish(workdir: str) -> list[dict]:
  """Marks the current (last) segment of WORKDIR/provenance.json ended; returns all."""
  segments = _read(workdir)
  if segments:
    segments[-1]["ended"] = now()
    paths.write_text(paths.path(workdir, FILE), json.dumps(segments, indent=1))
  return segments


def _read(workdir: str) -> list[dict]:
  path = paths.path(workdir, FILE)
  return json.loads(path.read_text()) if path.exists() else []


def key(seg: dict) -> tuple:
  """What must agree for two results to be comparable: code and device."""
  c = seg["code"]
  return (c.get("commit") or c.get("version"), c.get("dirty", False), seg["device_kind"])


def describe(seg: dict) -> str:
  """One line: code version, device, JAX version."""
  c = seg["code"]
  if "commit" in c:
    version = c["commit"][:10] + (" with uncommitted changes" if c["dirty"] else "")
  else:
    version = f"version {c['version']}"
  device = f"{seg['platform']} {seg['device_kind']} x {seg['device_count']}"
  return f"code {version}, {device}, jax {seg['packages']['jax']}"


def report_lines(entries) -> list[str]:
  """A report's provenance section: each distinct (code, device) with its runs, and a
  plain warning when the runs come from more than one."""
  groups: dict[tuple, list] = {}
  for entry in entries:
    for seg in entry.get("results", {}).get("provenance", []):
      groups.setdefault(key(seg), [seg, []])[1].append(entry["name"])
  if not groups:
    return []
  lines = ["## Provenance", ""]
  if len(groups) > 1:
    lines += [
      f"**These runs come from {len(groups)} different code versions or devices**; runs "
      "are deterministic on one machine only, so compare across them with care.",
      "",
    ]
  if len(groups) == 1:
    ((seg, names),) = groups.values()
    return lines + [f"- every run ({len(set(names))}): {describe(seg)}"]
  for seg, names in groups.values():
    shown = ", ".join(sorted(set(names)))
    lines.append(f"- {describe(seg)}: {shown}")
  return lines
