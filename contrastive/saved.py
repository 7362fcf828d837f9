"""A saved run, for analysis: its config, metrics, results and features.

  from contrastive import saved
  run = saved.load("/tmp/contrastive/quickstart")
  steps, loss = run.series("loss")
  feats, projs, labels = saved.test_features(run)
  xy = saved.pca_2d(feats)

Works on any run written by `run.py`: a single run, a sweep's run directory, or a
member of a temperature population (whose parameters live in the population's
stacked checkpoint; `results.json` says where). A run saved by an older version
loads too: its config is merged over today's schema (`config.from_saved`).
"""

import dataclasses
import json
import os

import jax
import ml_collections
import numpy as np

from contrastive import build
from contrastive import checkpoint
from contrastive import config as config_lib
from contrastive import evaluate
from contrastive import logs
from contrastive import numerics
from contrastive import paths
from contrastive import provenance as provenance_lib
from contrastive.data import datasets


@dataclasses.dataclass(frozen=True)
class Run:
  """What a run wrote: its directory, config, final results and logged metrics."""

  path: str
  config: ml_collections.ConfigDict
  results: dict
  metrics: list  # one dict per logged step, with "step"

  @property
  def provenance(self) -> list[dict]:
    """Where the result came from, one dict per segment of the run (a resumed run
    has several): code version, Python and library versions, device, times. Empty
    for runs written before it was recorded."""
    return self.results.get("provenance", [])

  def origin(self) -> str:
    """The provenance in one line per segment (`provenance.describe`)."""
    return "\n".join(provenance_lib.describe(s) for s in self.provenance)

  def series(self, name: str):
    """(steps, values) of one logged metric, e.g. "loss" or "neg_sim"."""
    rows = [m for m in self.metrics if name in m]
    if not rows:
      names = sorted({k for m in self.metrics for k in m} - {"step"})
      raise KeyError(
        f"No metric {name!r} in {self.path}/metrics.jsonl; logged: {', '.join(names)}."
      )
    return np.array([m["step"] for m in rows]), np.array([m[name] for m in rows], np.float64)


def load(path: str) -> Run:
  """Reads WORKDIR/results.json (with the run's config) and WORKDIR/metrics.jsonl."""
  results_path = paths.path(path, "results.json")
  if not results_path.exists():
    raise FileNotFoundError(_not_a_finished_run(path))
  results = json.loads(results_path.read_text())
  config = config_lib.from_saved(results.pop("config"))
  return Run(path, config, results, logs.read_metrics(path))


def _not_a_finished_run(path: str) -> str:
  """Why `path` cannot be loaded as a run, in one line: missing, a sweep's or another
  parent directory of runs, or a run that has not finished."""
  root = paths.path(path)
  if not root.exists():
    return f"No directory {path}: pass a run's workdir (the --workdir it trained in)."
  runs = sorted(d.name for d in root.iterdir() if (d / "results.json").exists())
  if runs:
    what = "a sweep's directory" if (root / "sweep.json").exists() else "a directory of runs"
    return (
      f"{path} is {what}, not a run: load one of its {len(runs)} finished runs, e.g. "
      f"saved.load({str(root / runs[0])!r})."
    )
  sweeps = sorted(d.name for d in root.iterdir() if (d / "sweep.json").exists())
  if sweeps:
    return (
      f"{path} is a directory of sweeps ({', '.join(sweeps)}), not a run: load a run inside "
      "one of them."
    )
  if (root / "metrics.jsonl").exists() or (root / "checkpoints").exists():
    return f"No results.json in {path}: the run has not finished (rerun its command to resume it)."
  return f"{path} holds no run (no results.json, metrics.jsonl or checkpoints)."


def _checkpoints(run: Run) -> str:
  """The directory of the checkpoints holding `run`'s model (its population's, for a
  population member)."""
  if run.results.get("population_member") is not None:
    return os.path.join(run.results["population_workdir"], "checkpoints")
  return os.path.join(run.path, "checkpoints")


def has_model(run: Run) -> bool:
  """Whether `run`'s trained model can be rebuilt: its checkpoints are there (a run
  committed under results/ keeps only its small files)."""
  return paths.is_dir(_checkpoints(run))


def test_features(run: Run, *, max_examples: int | None = None):
  """Encoder features, projections and labels of the run's test images, from its
  latest checkpoint (eval-mode BatchNorm, clean images).

  Returns:
    (features [N, F], projections [N, D], labels [N]) as NumPy arrays.
  """
  directory = _checkpoints(run)
  if not paths.is_dir(directory):
    raise FileNotFoundError(
      f"No checkpoints in {directory}: cannot rebuild the model of {run.path}."
    )
  built = build.build_run(run.config, abstract_state=True)  # a target: nothing compiled
  state = built.state
  member = run.results.get("population_member")
  if member is not None:  # the population's stacked state (`population.stack_population`)
    size = run.results["population_size"]
    state = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct((size, *x.shape), x.dtype, sharding=x.sharding), state
    )
  ckpt = checkpoint.Checkpointer(directory, every=1, keep=1)
  try:
    restored = ckpt.restore_latest(state)
  finally:
    ckpt.close()
  if restored is state:
    raise FileNotFoundError(
      f"No readable checkpoint in {directory}: cannot rebuild the model of {run.path}."
    )
  state = restored
  if member is not None:
    state = jax.tree.map(lambda x: x[member], state)
  test = built.data.test
  n = test.num_examples if max_examples is None else min(max_examples, test.num_examples)
  feats, projs = evaluate.encode(built.setup.model, state, datasets.clean_inputs(test, n))
  return feats, projs, np.asarray(test.labels)[:n]


def pca_2d(x) -> np.ndarray:
  """The first two principal components of the L2-normalised rows of `x` [N, D]."""
  x = np.asarray(numerics.l2_normalize(np.asarray(x, np.float32)))
  x = x - x.mean(axis=0)
  _, _, vt = np.linalg.svd(x, full_matrices=False)
  return x @ vt[:2].T
