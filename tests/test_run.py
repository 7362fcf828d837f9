"""The README's main command, end to end, in a subprocess as a user runs it."""

import csv
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
  return subprocess.run(
    [sys.executable, "run.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
  )


def test_relative_penalty_figure_command(tmp_path):
  workdir = tmp_path / "fig3"
  proc = _run(
    "--config=configs/relative_penalty.py", f"--workdir={workdir}", "--config.num_points=51"
  )
  assert proc.returncode == 0, proc.stderr
  png = (workdir / "relative_penalty.png").read_bytes()
  assert png.startswith(b"\x89PNG") and len(png) > 10_000
  with open(workdir / "relative_penalty.csv") as f:
    rows = list(csv.reader(f))
  assert rows[0][0] == "similarity" and len(rows) == 52
  table = np.array(rows[1:], dtype=np.float64)
  s, r = table[:, 0], table[:, 1:]
  for col, tau in zip(r.T, (0.07, 0.2, 0.3, 0.5, 0.7, 1.0), strict=True):
    want = np.exp(s / tau) / np.sum(np.exp(s / tau))
    np.testing.assert_allclose(col, want, rtol=1e-4, atol=1e-12)
  with open(workdir / "penalty_entropy.csv") as f:
    entropy = np.array(list(csv.reader(f))[1:], dtype=np.float64)
  assert np.all(np.diff(entropy[:, 1]) > 0)
  report = (workdir / "report.md").read_text()
  assert report.count("**holds**") == 2, report  # both claims, judged on the curves


def test_unknown_config_key_is_one_line_and_exit_2(tmp_path):
  proc = _run(
    "--config=configs/relative_penalty.py", f"--workdir={tmp_path}", "--config.num_pionts=51"
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
    "error: No config key 'num_pionts'; did you mean 'num_points'?"
  ]
  assert not any(tmp_path.iterdir())
