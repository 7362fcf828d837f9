"""The benchmark scripts run (at tiny sizes; no timing is asserted here)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, out, *args):
  """Runs a benchmark script with --json OUT; returns the parsed JSON."""
  proc = subprocess.run(
    [sys.executable, script, *args, "--json", str(out)],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  data = json.loads(out.read_text())
  stamp = {key: data.pop(key) for key in ("command", "date", "code")}  # how it was made
  assert stamp["command"].startswith(f"python {script}") and "--json" in stamp["command"]
  return data["rows"] if set(data) == {"rows"} else data  # a list of rows is kept as rows


def test_a_result_file_is_stamped_before_it_is_overwritten(tmp_path, monkeypatch):
  # Stamping after `open(path, "w")` saw a committed result file as changed ("+dirty").
  sys.path.insert(0, ROOT)
  from benchmarks import common

  path = tmp_path / "result.json"
  path.write_text('{"old": 1}')
  seen = []
  monkeypatch.setattr(common, "stamp", lambda: seen.append(path.read_text()) or {"code": "c"})
  common.write_json(str(path), {"new": 2})
  assert seen == ['{"old": 1}']
  assert json.loads(path.read_text()) == {"code": "c", "new": 2}


def test_the_stamp_calls_only_code_changes_dirty(tmp_path):
  # Results written beside a result (benchmarks/results/) leave its code version clean.
  repo = tmp_path / "repo"
  (repo / "benchmarks" / "results").mkdir(parents=True)
  shutil.copy(os.path.join(ROOT, "benchmarks", "common.py"), repo / "benchmarks")
  (repo / "benchmarks" / "results" / "a.json").write_text("{}")
  (repo / "code.py").write_text("x = 1")
  git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)
  git("init", "-q")
  git("add", ".")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
  stamp = lambda: subprocess.run(
    [sys.executable, "-c", "import common; print(common.stamp()['code'])"],
    cwd=repo / "benchmarks", capture_output=True, text=True, check=True,
  ).stdout.strip()  # fmt: skip
  (repo / "benchmarks" / "results" / "a.json").write_text('{"new": 1}')
  assert not stamp().endswith("+dirty")
  (repo / "code.py").write_text("x = 2")
  assert stamp().endswith("+dirty")


def test_losses_benchmark_runs_and_reports_every_implementation(tmp_path):
  rows = _run("benchmarks/losses.py", tmp_path / "o.json", "--sizes", "64", "--repeats", "5")[
    "rows"
  ]
  assert {(r["loss"], r["2N"]) for r in rows} == {
    ("nt_xent", 64), ("hard_contrastive", 64), ("generalized_swd", 64)
  }  # fmt: skip
  nt = next(r for r in rows if r["loss"] == "nt_xent")
  assert set(nt["median_ms"]) == {"ours", "plain_jnp", "optax"}
  assert all(v > 0 for v in nt["median_ms"].values())


def test_augment_benchmark_runs(tmp_path):
  rows = _run(
    "benchmarks/augment.py", tmp_path / "o.json", "--batch", "4", "--repeats", "5",
    "--encoder", "convn",  # the step's model: the script's code is the same for every one
    "--setting", "96x96",  # one setting: the script's code path is the same for both
  )["rows"]  # fmt: skip
  assert [r["setting"] for r in rows] == ["96x96 simclr_imagenet, resnet18 imagenet stem"]
  assert [r["encoder"] for r in rows] == ["convn"]
  assert all(r["augment_ms"] > 0 and r["train_step_ms"] > 0 for r in rows)


@pytest.mark.heavy(seconds=26)
def test_stream_benchmark_runs(tmp_path):
  out = _run(
    "benchmarks/stream.py", tmp_path / "o.json", "--images", "8", "--batch", "4",
    "--batches", "1", "--step-batch", "2", "--encoder", "convn", "--repeats", "5",
  )  # fmt: skip
  assert out["host_images_per_s"] > 0 and len(out["host_runs"]) == 5
  assert out["step_images_per_s"] > 0 and out["jpeg_kib"] > 10


@pytest.mark.heavy(seconds=32)
def test_gpu_script_dry_run_runs_its_first_item(tmp_path):
  # benchmarks/gpu.sh --dry-run, its first item only: the training-step benchmark at a
  # tiny size (the ConvN; the script's logic is the encoder's same), within the deadline.
  out = tmp_path / "out"
  proc = subprocess.run(
    ["bash", "benchmarks/gpu.sh", "--dry-run", str(out), "300"],
    cwd=ROOT, capture_output=True, text=True, timeout=600,
    env={**os.environ, "ITEMS": "train_step", "PYTHON": sys.executable},
  )  # fmt: skip
  assert proc.returncode == 0, proc.stderr[-3000:]
  log = (out / "gpu.log").read_text()
  assert "dry run: 1, items: train_step" in log and "train_step: exit 0" in log, log[-3000:]
  row = json.loads((out / "train_step.json").read_text())
  assert row["images_per_s"] > 0 and row["step_gflop"] > 0 and row["logged_step_ms"] > 0
  assert "done, " in log
  # An interpreter without jax (the environment not activated): one line, exit 2, no OUT.
  proc = subprocess.run(
    ["bash", "benchmarks/gpu.sh", "--dry-run", str(tmp_path / "none"), "300"],
    cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHON": "false"},
  )  # fmt: skip
  assert proc.returncode == 2 and proc.stderr.startswith("error: false cannot import jax")
  assert not (tmp_path / "none").exists()


@pytest.mark.heavy(seconds=32)
def test_sweep_benchmark_runs(tmp_path):
  row = _run(
    "benchmarks/sweep.py",
    tmp_path / "o.json",
    "--batch",
    "8",
    "--repeats",
    "5",
    "--temperatures",
    "0.1",
  )
  assert row["temperatures"] == 1
  assert row["population_step_ms"] > 0 and row["separate_steps_ms"] > 0


@pytest.mark.heavy(seconds=18)
def test_blockwise_benchmark_runs(tmp_path):
  speed = _run(
    "benchmarks/blockwise.py", tmp_path / "s.json", "speed", "--size", "64", "--blocks", "24",
    "--repeats", "5",
  )  # fmt: skip
  assert set(speed) == {"dense", "block24"} and all(v > 0 for v in speed.values())
  memory = _run(
    "benchmarks/blockwise.py", tmp_path / "m.json", "memory", "--cases", "dense:64,block24:64"
  )
  assert [r["impl"] for r in memory] == ["dense", "block24"]
  assert memory[0]["loss"] == pytest.approx(memory[1]["loss"], rel=1e-6)
  assert all(r["peak_gib"] > 0 for r in memory)
  mesh = _run(
    "benchmarks/blockwise.py", tmp_path / "g.json", "mesh", "--devices", "2", "--size", "64",
    "--block", "24", "--repeats", "5", "--loss", "hard",
  )  # fmt: skip
  assert set(mesh) == {"dense", "blockwise, no mesh", "blockwise, mesh"}
  assert all(v > 0 for v in mesh.values())


def test_torch_peer_runs_or_says_what_it_needs(tmp_path):
  # PyTorch is not a dependency: without it the peer stops with one line saying so;
  # with it, the step runs eager and compiled at a tiny size.
  proc = subprocess.run(
    [sys.executable, "benchmarks/peer_torch.py", "step", "--batch", "4", "--width", "4",
     "--repeats", "5", "--json", str(tmp_path / "o.json")],
    cwd=ROOT, capture_output=True, text=True, timeout=600,
  )  # fmt: skip
  try:
    import torch  # noqa: F401, PLC0415
  except ImportError:
    assert proc.returncode == 1 and proc.stderr.strip() == (
      "benchmarks/peer_torch.py needs PyTorch: pip install torch torchvision"
    )
    return
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads((tmp_path / "o.json").read_text())["rows"]
  assert [r["impl"] for r in rows] == ["torch eager", "torch.compile"]


def test_benchmarks_md_tables_come_from_the_committed_json(tmp_path):
  from benchmarks import report

  text = open(os.path.join(ROOT, "BENCHMARKS.md")).read()
  assert report.main(["report.py", "check"]) == 0  # as committed
  named = report.BLOCK.findall(text)
  assert {name for _, name, _, _ in named} == set(report.TABLES)  # every JSON has its table
  results = tmp_path / "results"
  results.mkdir()
  for name in report.TABLES:
    data = json.load(open(os.path.join(ROOT, "benchmarks", "results", name)))
    if name == "losses.json":
      data["rows"][0]["median_ms"]["ours"] += 1.0  # one number changed
    (results / name).write_text(json.dumps(data))
  changed = report.render(text, str(results))
  assert changed != text and "| NT-Xent | 512 | 2.96 |" in changed
  assert report.render(changed, str(results)) == changed  # generating again changes nothing


def test_suite_profile_records_processes_and_each_tests_compiles(tmp_path):
  # Its own pytest session on one cheap test: the hook records that session's process
  # and the test's compiles (to its files, not the console), and a test's subprocess.
  test = tmp_path / "test_probe.py"
  test.write_text(
    "import subprocess, sys, jax, jax.numpy as jnp\n"
    "def test_probe():\n"
    "  assert float(jax.jit(lambda x: x * 3)(jnp.float32(2))) == 6\n"
    "  subprocess.run([sys.executable, '-c', 'import jax; jax.jit(lambda x: x + 1)(1)'],"
    " check=True)\n"
  )
  env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not a worker
  proc = subprocess.run(
    [sys.executable, "benchmarks/suite_profile.py", "--json", str(tmp_path / "p.json"), "--",
     "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(test)],
    cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
  )  # fmt: skip
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert "Finished XLA compilation" not in proc.stdout + proc.stderr  # the files only
  summary = json.loads((tmp_path / "p.json").read_text())
  assert summary["pytest_returncode"] == 0
  kinds = {r["kind"]: r for r in summary["processes"]}
  assert kinds["pytest"]["processes"] == kinds["a test's python -c"]["processes"] == 1
  assert all(r["cpu_s"] > 0 for r in summary["processes"])
  (row,) = [r for r in summary["tests"] if r["test"].endswith("test_probe.py::test_probe")]
  assert row["compiles"] >= 2 and "jit(<lambda>)" in row["programs"]  # both processes'
  assert "XLA compiles by test" in proc.stdout
  # Without arguments it runs the README's test command's (CI's) pytest arguments.
  sys.path.insert(0, ROOT)
  from benchmarks import suite_profile

  line = next(x for x in open(os.path.join(ROOT, "README.md")) if "python -m pytest" in x)
  assert suite_profile.readme_pytest_args() == line.split("python -m pytest", 1)[1].split()
