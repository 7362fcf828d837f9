"""Fixtures several test modules share, computed once per test session.

Under pytest-xdist each worker is its own process, so a session fixture would run
once per worker; `_once` computes a value once for all of them, under a file lock in
the session's shared temporary directory (pytest-xdist's documented pattern)."""

import fcntl
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _once(tmp_path_factory, worker_id, name, produce):
  """produce(directory) run once per session in DIRECTORY (shared by the workers);
  returns the directory."""
  root = tmp_path_factory.getbasetemp()
  if worker_id != "master":  # xdist: the workers' base directories share a parent
    root = root.parent
  directory = root / name
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (directory / ".done").exists():
      directory.mkdir(exist_ok=True)
      produce(directory)
      (directory / ".done").touch()
  return directory


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, worker_id):
  """A compilation cache shared by every run of tests/tiny_run.py in the session (as
  run.py's runs share one): the first run compiles, the others load."""
  return _once(tmp_path_factory, worker_id, "tiny_cache", lambda d: None)


@pytest.fixture(scope="session")
def tiny_uninterrupted(tmp_path_factory, worker_id, tiny_cache):
  """The workdir of tests/tiny_run.py run once, uninterrupted, locally: the reference
  the killed-and-resumed runs of test_checkpoint and test_gcs must end equal to."""

  def produce(workdir):
    proc = subprocess.run(
      [sys.executable, "tests/tiny_run.py", str(workdir), str(tiny_cache)],
      cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

  return _once(tmp_path_factory, worker_id, "tiny_uninterrupted", produce)
