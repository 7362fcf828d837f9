"""The notebooks run end to end (nbclient, a fresh kernel each), so they never rot."""

import importlib.util
import os

import nbformat
import pytest

from contrastive import train
from tests import tiny_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
  "execute_notebooks", os.path.join(ROOT, "notebooks", "execute.py")
)
notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebooks)


def _execute(name: str, env: dict) -> nbformat.NotebookNode:
  """The notebook run as a user opens it: the kernel started in notebooks/, without
  PYTHONPATH (its first cell finds `contrastive`)."""
  return notebooks.execute(name, {**env, "PYTHONPATH": None})


def _stdout(nb) -> str:
  return "".join(
    o.get("text", "")
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.get("outputs", [])
    if o.get("name") == "stdout"
  )


def test_the_committed_notebooks_hold_their_outputs():
  for name in notebooks.NOTEBOOKS:
    nb = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("outputs") for c in code), f"{name}: run python notebooks/execute.py"
    assert all(not any(o.get("output_type") == "error" for o in c.outputs) for c in code), name


def test_loss_analysis_notebook_runs():
  nb = _execute("loss_analysis.ipynb", {})
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
