"""The notebooks run end to end (nbclient, a fresh kernel each), so they never rot."""

import os

from nbclient import NotebookClient
import nbformat
import pytest

from contrastive import train
from tests import tiny_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _execute(name: str, env: dict) -> nbformat.NotebookNode:
  nb = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)  # the kernel inherits this process's environment
  try:
    NotebookClient(
      nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": ROOT}}
    ).execute()
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k)
      else:
        os.environ[k] = v
  return nb


def _stdout(nb) -> str:
  return "".join(
    o.get("text", "")
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.get("outputs", [])
    if o.get("name") == "stdout"
  )


def _pythonpath():
  return os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)


def test_loss_analysis_notebook_runs():
  nb = _execute("loss_analysis.ipynb", {"PYTHONPATH": _pythonpath()})
  out = _stdout(nb)
  # Its own assertions (Eq. 4, Eq. 6's bound, the entropy's monotonicity) passed.
  assert "Eq. 4 holds" in out
  assert "entropy at tau=0.01: 1.04" in out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  config = tiny_run.tiny_config()
  config.train.num_epochs, config.eval.linear_epochs = 1, 1
  workdir = str(tmp_path_factory.mktemp("run"))
  results = train.train_and_evaluate(config, workdir)
  return workdir, results


def test_workdir_notebook_runs(finished_run):
  workdir, results = finished_run
  nb = _execute(
    "workdir.ipynb",
    {
      "PYTHONPATH": _pythonpath(),
      "CONTRASTIVE_WORKDIR": workdir,
      "CONTRASTIVE_MAX_EXAMPLES": "300",
    },
  )
  out = _stdout(nb)
  assert f"knn_accuracy         {results['knn_accuracy']:.4f}" in out
  assert "features (300, " in out
  # Every figure cell produced an image.
  images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
  assert len(images) == 3
