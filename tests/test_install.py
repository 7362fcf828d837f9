"""An installed copy (`pip install .`, not editable) is complete without configs/.

From a directory outside the repository, every module of the installed package
imports, and every paper study writes its report from a finished sweep directory.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from contrastive import config as config_lib
from contrastive import experiments
from contrastive import recipes
from contrastive import sweep
from contrastive import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each study's small grid, made tiny: 4 steps on 128 embedded digits, a tiny head.
TINY = (
  "data.name=digits,data.image_size=28,data.augment=randbit,data.train_examples=128,"
  "data.batch_size=32,model.out_dim=16,model.hidden_dim=32,train.num_epochs=1,"
  "train.log_every=2,train.tensorboard=False,eval.linear_epochs=1,eval.linear_decay_epochs=()"
)

TINY_LATENT = (
  "data.latent_train=128,data.latent_test=64,data.batch_size=32,model.width=16,"
  "model.out_dim=16,model.hidden_dim=32,train.num_epochs=1,train.log_every=2,"
  "eval.linear_epochs=1,eval.linear_decay_epochs=()"
)

_IN_INSTALLED_COPY = """
import importlib, json, pkgutil, sys
import contrastive
assert contrastive.__file__.startswith(sys.argv[1]), contrastive.__file__
modules = [m.name for m in pkgutil.walk_packages(contrastive.__path__, "contrastive.")]
for name in modules:
  importlib.import_module(name)
try:
  import configs
  has_configs = True
except ModuleNotFoundError:
  has_configs = False
from contrastive import experiments
from contrastive.experiments import relative_penalty
dirs = json.loads(sys.argv[2])
reports = {}
for name in experiments.names():
  if name == "relative_penalty":
    report = relative_penalty.report(dirs[name], [], relative_penalty.get_config())
  else:
    report = experiments.write_report(dirs[name])
  reports[name] = {"complete": report.complete, "claims": len(report.claims),
                   "report": report.paths["report"]}
print(json.dumps({"modules": modules, "has_configs": has_configs, "reports": reports}))
"""


@pytest.fixture(scope="module")
def sweep_dirs(tmp_path_factory):
  """A finished sweep directory of every study's small grid, made tiny.

  One real run (trained here, with digits pasted so its results hold the digit
  probes too) stands in for every run of every grid: its checkpoint and metrics
  are copied into each run's directory, with results.json carrying that run's
  config. `sweep.run` then finds every run finished and writes sweep.json.
  """
  root = tmp_path_factory.mktemp("sweeps")
  trained = root / "trained"
  config = config_lib.with_overrides(
    recipes.small(), TINY + ",data.digits_pool=4,data.digits_size=12"
  )
  results = train.train_and_evaluate(config, str(trained))
  del results["config"]
  dirs = {"relative_penalty": str(root / "relative_penalty")}
  for name in experiments.names():
    if name == "relative_penalty":
      continue
    try:
      study_config = experiments.get(name).get_config("scale=small," + TINY)
    except config_lib.ConfigError:  # a study of the latent test-bed only
      study_config = experiments.get(name).get_config("scale=latent," + TINY_LATENT)
    workdir = root / name
    for run_name, _, run_config in sweep.expand(study_config):
      shutil.copytree(trained, workdir / run_name, ignore=shutil.ignore_patterns("results.json"))
      (workdir / run_name / "results.json").write_text(
        json.dumps({**results, "config": run_config.to_dict()})
      )
    assert len(sweep.run(study_config, str(workdir))) == len(study_config.sweep.runs)
    dirs[name] = str(workdir)
  return dirs


@pytest.mark.heavy(seconds=84)
def test_installed_copy_imports_and_writes_every_report(tmp_path, sweep_dirs):
  source = tmp_path / "source"
  shutil.copytree(
    ROOT,
    source,
    ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build"),
  )
  site = tmp_path / "site"
  install = subprocess.run(
    [
      sys.executable,
      "-m",
      "pip",
      "install",
      "--quiet",
      "--no-deps",
      "--no-build-isolation",
      "--target",
      str(site),
      str(source),
    ],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert install.returncode == 0, install.stderr[-3000:]
  outside = tmp_path / "elsewhere"
  outside.mkdir()
  env = {**os.environ, "PYTHONPATH": str(site)}
  proc = subprocess.run(
    [sys.executable, "-c", _IN_INSTALLED_COPY, str(site), json.dumps(sweep_dirs)],
    cwd=outside,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  in_repo = {
    ".".join(os.path.relpath(os.path.join(d, f), ROOT)[:-3].split(os.sep)).removesuffix(".__init__")
    for d, _, files in os.walk(os.path.join(ROOT, "contrastive"))
    for f in files
    if f.endswith(".py")
  } - {"contrastive"}
  assert set(out["modules"]) == in_repo
  assert not out["has_configs"]
  assert set(out["reports"]) == set(experiments.names())
  for name, report in out["reports"].items():
    assert report["complete"] and report["claims"] >= 1, (name, report)
    assert os.path.getsize(report["report"]) > 0
  # The installed copy has the command line: `contrastive-run` takes a config file from
  # anywhere (here the checkout's) and checks it before anything is written.
  proc = subprocess.run(
    [str(site / "bin" / "contrastive-run"), f"--config={ROOT}/configs/relative_penalty.py",
     f"--workdir={tmp_path / 'fig3'}", "--config.num_pionts=51"],
    cwd=outside, env=env, capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines() == [
    "error: No config key 'num_pionts'; did you mean 'num_points'?"
  ]
  assert not (tmp_path / "fig3").exists()
  # --help lists the studies and keys (no configs/ outside a checkout: it says so).
  proc = subprocess.run([str(site / "bin" / "contrastive-run"), "--help"], cwd=outside, env=env,
                        capture_output=True, text=True, timeout=300)  # fmt: skip
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "none here (a checkout" in proc.stdout and "wang_liu_table1" in proc.stdout
  assert "loss.temperature=0.2" in proc.stdout
  # `contrastive`: train (as contrastive-run), list (as --help) and plot; a typo, one line.
  command = str(site / "bin" / "contrastive")
  listed = subprocess.run([command, "list"], cwd=outside, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
  assert listed.returncode == 0 and listed.stdout == proc.stdout, listed.stderr[-3000:]
  trained = subprocess.run(
    [command, "train", f"--config={ROOT}/configs/relative_penalty.py",
     f"--workdir={tmp_path / 'fig3'}", "--config.num_pionts=51"],
    cwd=outside, env=env, capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert trained.returncode == 2 and trained.stderr.strip().splitlines() == [
    "error: No config key 'num_pionts'; did you mean 'num_points'?"
  ]
  sweep_dir = sweep_dirs["wang_liu_table1"]
  plotted = subprocess.run([command, "plot", sweep_dir, str(tmp_path / "fig3")], cwd=outside,
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
  assert plotted.stdout.split() == [os.path.join(sweep_dir, "sweep.png")], plotted.stdout
  assert (
    plotted.returncode == 2
    and plotted.stderr.startswith("error: ")
    and "not a run" in plotted.stderr
  )  # a directory that holds no run: one line
  wrong = subprocess.run([command, "trian"], cwd=outside, env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
  assert wrong.returncode == 2 and wrong.stderr.strip().splitlines() == [
    "error: unknown command 'trian'; valid: train, list, plot (contrastive --help)."
  ]


def _imports(path: str) -> set[str]:
  """The modules `path` imports when imported (not in its `__main__` block)."""
  tree = ast.parse(open(path).read())
  body = [
    n
    for n in tree.body
    if not (isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))  # a script's own
  ]
  found = set()
  for node in (n for top in body for n in ast.walk(top)):
    if isinstance(node, ast.ImportFrom) and node.module:
      found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    elif isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
  return found


def test_the_arrows_point_one_way():
  # Library code never imports configs/, the import graph has no circle, and no
  # module calls another's private _name.
  modules = {}
  for d, _, files in os.walk(os.path.join(ROOT, "contrastive")):
    for f in files:
      if f.endswith(".py"):
        path = os.path.join(d, f)
        name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
        modules[name] = path
  graph = {}
  for name, path in modules.items():
    imported = _imports(path)
    assert not any(m == "configs" or m.startswith("configs.") for m in imported), name
    graph[name] = {m for m in imported if m in modules and m not in (name, "contrastive")}
  done, active = set(), []

  def visit(node):
    assert node not in active, f"import circle: {' -> '.join(active[active.index(node) :])}"
    if node in done:
      return
    active.append(node)
    for dep in graph[node]:
      visit(dep)
    active.pop()
    done.add(node)

  for name in graph:
    visit(name)
  private = re.compile(r"\b([a-z_]+)\._[a-z]\w*\(")
  short_names = {n.rsplit(".", 1)[-1] for n in modules}
  for root in ("contrastive", "benchmarks", "configs", "tests"):
    for d, _, files in os.walk(os.path.join(ROOT, root)):
      for f in (f for f in files if f.endswith(".py")):
        text = open(os.path.join(d, f)).read()
        for match in private.finditer(text):
          owner = match.group(1)
          assert owner not in short_names or owner == f[:-3], f"{f} calls {match.group(0)}"
