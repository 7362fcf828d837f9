"""Fixtures several test modules share, computed once per test session.

Under pytest-xdist each worker is its own process, so a session fixture would run
once per worker; `_once` computes a value once for all of them, under a file lock in
the session's shared temporary directory (pytest-xdist's documented pattern)."""

import fcntl
import itertools
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
  """One project cache for the whole session, shared by the xdist workers and every
  run.py they start (`$CONTRASTIVE_CACHE`): its compiled programs are JAX's
  persistent compilation cache, so the many tests that compile the same small
  programs (the tiny ConvN runs, the evaluation's probes) compile each once. Empty
  at the start of a session, so a test never depends on an earlier session, and
  apart from the user's ~/.cache/contrastive."""
  del config
  run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"  # xdist's run id
  cache = os.path.join(tempfile.gettempdir(), f"contrastive-tests-{run}")
  os.environ["CONTRASTIVE_CACHE"] = cache
  # Every program kept, however fast it compiled (the library keeps those over 0.5 s):
  # the many tests and processes that compile the same small programs load them.
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  from contrastive import step  # noqa: PLC0415  (after the environment is set)

  step.enable_compilation_cache()


def pytest_collection_modifyitems(config, items):
  """The heavy tests (`@pytest.mark.heavy(seconds=...)`: a training run, several
  processes) first in each pytest-xdist worker's share, longest first and dealt round
  the workers. Worksteal gives each of N workers a contiguous 1/N of this order and
  lets an idle one take the end of another's: a heavy test left near the end would run
  alone while the other workers wait. (`seconds`: its duration in a 2-worker run on 2
  CPU cores, for the order only.)"""
  del config
  workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
  seconds = lambda item: item.get_closest_marker("heavy").kwargs["seconds"]  # noqa: E731
  heavy = sorted((i for i in items if i.get_closest_marker("heavy")), key=seconds, reverse=True)
  rest = iter([i for i in items if not i.get_closest_marker("heavy")])
  order, left = [], len(items)
  for w in range(workers):
    size = left // (workers - w)  # the share worksteal sends worker w
    share = heavy[w::workers]
    order += share + list(itertools.islice(rest, max(size - len(share), 0)))
    left -= size
  items[:] = order + list(rest)


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
