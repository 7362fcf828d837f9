"""The benchmark scripts run (at tiny sizes; no timing is asserted here)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_losses_benchmark_runs_and_reports_every_implementation(tmp_path):
  out = tmp_path / "losses.json"
  proc = subprocess.run(
    [sys.executable, "benchmarks/losses.py", "--sizes", "64", "--repeats", "5", "--json", str(out)],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  rows = json.loads(out.read_text())["rows"]
  assert {(r["loss"], r["2N"]) for r in rows} == {("nt_xent", 64), ("hard_contrastive", 64)}
  nt = next(r for r in rows if r["loss"] == "nt_xent")
  assert set(nt["median_ms"]) == {"ours", "plain_jnp", "optax"}
  assert all(v > 0 for v in nt["median_ms"].values())


def test_augment_benchmark_runs(tmp_path):
  out = tmp_path / "augment.json"
  proc = subprocess.run(
    [
      sys.executable,
      "benchmarks/augment.py",
      "--batch",
      "4",
      "--repeats",
      "5",
      "--width",
      "4",
      "--json",
      str(out),
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr
  rows = json.loads(out.read_text())["rows"]
  assert len(rows) == 2
  assert all(r["augment_ms"] > 0 and r["train_step_ms"] > 0 for r in rows)


def test_train_step_benchmark_runs(tmp_path):
  out = tmp_path / "step.json"
  proc = subprocess.run(
    [
      sys.executable,
      "benchmarks/train_step.py",
      "--batch",
      "8",
      "--repeats",
      "5",
      "--width",
      "4",
      "--json",
      str(out),
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = json.loads(out.read_text())
  assert row["images_per_s"] > 0 and row["step_gflop"] > 0
