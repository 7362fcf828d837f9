"""Preemption: a run killed mid-way (SIGKILL or SIGTERM) resumes to identical results."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from contrastive import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_STEPS = 4 * (1497 // 64)  # tiny_run: 4 epochs of digits at batch 64


def _start(workdir, cache):
  return subprocess.Popen(
    [sys.executable, "tests/tiny_run.py", str(workdir), str(cache)],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _results(workdir):
  results = json.loads((workdir / "results.json").read_text())
  del results["wall_time_s"], results["time_s"]  # timings differ run to run
  return results


def _final_params(workdir):
  tree, step = checkpoint.read_latest(workdir / "checkpoints")
  return step, tree


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
  """A compilation cache the module's runs share, as run.py's runs do: the first
  run compiles, the others load (the same programs, so the same results)."""
  return tmp_path_factory.mktemp("compilation_cache")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  proc = _start(workdir, cache)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  return workdir


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_identical_results(tmp_path, uninterrupted, cache, sig):
  proc = _start(tmp_path, cache)
  first = tmp_path / "checkpoints" / "10"
  deadline = time.time() + 300
  while not first.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  proc.send_signal(sig)
  out, err = proc.communicate(timeout=300)
  # The kill must land mid-run for the test to mean anything.
  assert not (tmp_path / "results.json").exists(), "run finished before it was killed"
  if sig == signal.SIGTERM:
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received: saved a checkpoint at step" in out
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps and steps[-1] < NUM_STEPS

  resumed = _start(tmp_path, cache)
  _, err = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, err[-3000:]
  assert _results(tmp_path) == _results(uninterrupted)
  step_a, a = _final_params(tmp_path)
  step_b, b = _final_params(uninterrupted)
  assert step_a == step_b == NUM_STEPS
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)  # bit for bit
  logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").open()]
  assert logged == sorted(set(logged))  # no step logged twice across the restart
