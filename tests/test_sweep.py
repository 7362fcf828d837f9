"""Sweeps: grids of runs, resuming an interrupted sweep, tau populations."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from contrastive import checks
from contrastive import config as config_lib
from contrastive import jobs
from contrastive import locking
from contrastive import saved
from contrastive import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_rerun_study_names_its_finished_runs_in_one_short_line():
  names = [f"loss.temperature={t},seed={s}" for t in (0.1, 0.2, 0.5) for s in range(15)]
  line = jobs.skipping_line(names, 50)
  assert line == "skipping 45 of 50 runs, finished: loss.temperature=0.1,seed=0, ..., " + names[-1]
  assert jobs.skipping_line(names[:2], 3) == f"skipping 2 finished runs: {names[0]}, {names[1]}"


def test_grid_and_overrides_are_typed_and_checked():
  runs = config_lib.grid(loss__name=("contrastive", "simple"), loss__temperature=(0.1, 0.5))
  assert runs == (
    "loss.name=contrastive,loss.temperature=0.1",
    "loss.name=contrastive,loss.temperature=0.5",
    "loss.name=simple,loss.temperature=0.1",
    "loss.name=simple,loss.temperature=0.5",
  )
  config = config_lib.base()
  run = config_lib.with_overrides(
    config, "loss.temperature=0.5,data.batch_size=64,loss.normalize=False"
  )
  assert run.loss.temperature == 0.5 and run.data.batch_size == 64 and run.loss.normalize is False
  assert config.loss.temperature == 0.2  # the base config is not modified
  run = config_lib.with_overrides(config, "loss.hard_fraction=0.25")  # an unset placeholder
  assert run.loss.hard_fraction == 0.25
  # "None" unsets what defaults to unset (the dense kernel again), and nothing else.
  run = config_lib.with_overrides(run, "loss.block_size=64")
  assert (
    config_lib.apply(run, "loss.block_size=None,loss.hard_fraction=None").loss.block_size is None
  )
  assert run.loss.hard_fraction is None
  assert config_lib.apply(run, "loss.temperature_learned=none").loss.temperature_learned == "none"
  # Short names, and tuples with commas inside brackets, parse the same way.
  run = config_lib.with_overrides(config, "temperature=0.7,optimizer.decay_epochs=(10, 20)")
  assert run.loss.temperature == 0.7 and run.optimizer.decay_epochs == (10, 20)
  for bad, message in (
    ("loss.temprature=0.5", "No config key 'loss.temprature'"),
    ("data.batch_size=6.5", "data.batch_size=6.5: expected an integer"),
    ("loss.normalize=yes", "loss.normalize=yes: expected True or False"),
    ("loss.temperature", "Bad override 'loss.temperature': use key=value"),
    ("train.num_epochs=None", "train.num_epochs=None: this key cannot be unset"),
  ):
    with pytest.raises(config_lib.ConfigError, match=message):
      config_lib.with_overrides(config, bad)
  config.sweep.runs = ("loss.temperature=0.5", "loss.temperature=0.5")
  with pytest.raises(config_lib.ConfigError, match="duplicate"):
    sweep.expand(config)


def test_a_saved_config_merges_over_todays_base():
  saved_config = config_lib.base().to_dict()
  del saved_config["data"]["digits_pool"]  # a run saved before digits on images existed
  saved_config["data"]["retired_key"] = 1  # a key this version no longer reads
  saved_config["optimizer"]["decay_epochs"] = [10, 20]  # JSON turned the tuple into a list
  saved_config["loss"]["temperature"] = 0.7
  config = config_lib.from_saved(json.loads(json.dumps(saved_config)))
  assert config.data.digits_pool == 0 and "retired_key" not in config.data
  assert config.optimizer.decay_epochs == (10, 20) and config.loss.temperature == 0.7
  checks.check(config)


_SWEEP_CONFIG = """
from contrastive import config
from contrastive import recipes


def get_config():
  c = recipes.quickstart()
  c.data.update(name="digits", image_size=28, augment="randbit", batch_size=32, train_examples=96)
  c.model.update(encoder="convn", out_dim=16, hidden_dim=32)
  c.train.update(num_epochs=2, log_every=1, tensorboard=False)
  c.eval.update(linear_epochs=2, linear_decay_epochs=())
  c.sweep.runs = config.grid(loss__name=("contrastive",), loss__temperature=(0.1, 0.5)) + (
    "loss.name=simple",
  )
  c.sweep.population = True
  return c
"""


@pytest.mark.heavy(seconds=59)
def test_interrupted_sweep_finishes_only_the_missing_runs(tmp_path):
  (tmp_path / "sweep_config.py").write_text(_SWEEP_CONFIG)
  workdir = tmp_path / "work"
  cmd = [sys.executable, "run.py", f"--config={tmp_path}/sweep_config.py", f"--workdir={workdir}"]
  env = {**os.environ, "PYTHONPATH": ROOT}
  population = [
    "loss.name=contrastive,loss.temperature=0.1",
    "loss.name=contrastive,loss.temperature=0.5",
  ]
  # First run: killed as soon as the population (the first group) has its results.
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not all((workdir / n / "results.json").exists() for n in population):
    assert proc.poll() is None and time.time() < deadline, "the sweep stopped early"
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  finished = {n: (workdir / n / "results.json").stat().st_mtime_ns for n in population}
  assert not (workdir / "loss.name=simple" / "results.json").exists()
  # The same command in a second process while another trains the missing run (its
  # lock held here): it skips that run, trains nothing and says the sweep is not done.
  lock = locking.WorkdirLock(str(workdir / "loss.name=simple"))
  try:
    shared = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  finally:
    lock.release()
  assert shared.returncode == 0, shared.stderr[-3000:]
  lines = shared.stdout.splitlines()
  skip = [line for line in lines if line.startswith("run ")]
  holder = f"run 3/3: loss.name=simple is training in pid {os.getpid()} "
  assert len(skip) == 1 and skip[0].startswith(holder) and skip[0].endswith("; skipped")
  assert not any(line.startswith("finished ") for line in lines)
  assert any(line.startswith("1 of 3 runs are not finished") for line in lines)
  assert not (workdir / "loss.name=simple" / "results.json").exists()
  # Second run: the same command trains only the missing run.
  rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  lines = rerun.stdout.splitlines()
  assert f"skipping 2 finished runs: {', '.join(population)}" in lines
  assert [line for line in lines if line.startswith("run ")] == ["run 3/3: loss.name=simple"]
  trained = [line for line in lines if line.startswith("finished ")]
  assert len(trained) == 1 and trained[0].startswith("finished loss.name=simple: knn_accuracy ")
  assert trained[0].endswith(f"({workdir}/loss.name=simple/results.json)")
  # The run trained here has its figure, as a single run has; the sweep has its own.
  assert (workdir / "loss.name=simple" / "curves.png").read_bytes()[:4] == b"\x89PNG"
  assert (workdir / "sweep.png").exists()
  for n, mtime in finished.items():
    assert (workdir / n / "results.json").stat().st_mtime_ns == mtime
  summary = json.loads((workdir / "sweep.json").read_text())
  assert summary["declared_runs"] == 3
  assert [r["name"] for r in summary["runs"]] == population + ["loss.name=simple"]
  by_name = {r["name"]: r["results"] for r in summary["runs"]}
  assert by_name[population[0]]["population_size"] == 2
  temps = [
    json.loads((workdir / n / "results.json").read_text())["config"]["loss"]["temperature"]
    for n in population
  ]
  assert temps == [0.1, 0.5]
  logged = [
    json.loads(x)["temperature"] for x in (workdir / population[1] / "metrics.jsonl").open()
  ]
  assert logged and all(t == pytest.approx(0.5) for t in logged)
  # A member's model is rebuilt from the population's stacked checkpoint.
  feats = [
    saved.test_features(saved.load(str(workdir / n)), max_examples=40)[0] for n in population
  ]
  assert feats[0].shape == feats[1].shape and feats[0].shape[0] == 40
  assert np.abs(feats[0] - feats[1]).max() > 1e-3  # trained at different tau


@pytest.mark.heavy(seconds=39)
def test_population_equals_separate_runs_after_50_steps():
  # float64 throughout: float32 rounding differences between the vmapped and the
  # separate programs grow chaotically at low tau (see BENCHMARKS.md, Sweeps).
  proc = subprocess.run(
    [sys.executable, "tests/population_parity.py", "float64", "50", "0.01", "0.07,0.5"],
    cwd=ROOT,
    env={**os.environ, "JAX_ENABLE_X64": "1"},
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert max(out["to_separate"]) < 1e-5, out
  assert out["between_members"] > 1e-3, out  # the temperatures did make them differ
