"""Wang & Liu (CVPR 2021) Fig. 3: the relative penalty against similarity, per tau.

Command (no training: the analysis of Eq. 5 on a grid of similarities):
  python run.py --config=configs/relative_penalty.py --workdir=/tmp/contrastive/fig3

Writes relative_penalty.png (left: r(s) for each tau on a linear axis as the paper
draws it, small tau a spike near s = 1; `log_scale=True` for a log axis; right: the
entropy of r against tau), the plotted numbers (relative_penalty.csv,
penalty_entropy.csv) and report.md with the paper's two claims judged on the
computed curves: r(s) steepens toward s = 1 as tau falls (the hardest negative's
share grows), and the entropy of r rises monotonically with tau, toward log M (the
uniform penalty of the simple loss) as tau -> infinity. The published figure gives
curves without numbers.
"""

import itertools
import math
import os

import jax.numpy as jnp
from matplotlib import pyplot as plt
import ml_collections
import numpy as np

from contrastive import analysis
from contrastive import config as config_lib
from contrastive import paths as storage
from contrastive import reporting


def get_config(arg=None):
  """The analysis's grid: curves' temperatures, negatives on [-1, 1], entropy grid;
  `arg` overrides them ("num_points=51")."""
  config = ml_collections.ConfigDict()
  config.job = "analysis"
  config.experiment = "relative_penalty"
  config.temperatures = (0.07, 0.2, 0.3, 0.5, 0.7, 1.0)
  config.num_points = 201
  config.log_scale = False  # the paper's Fig. 3 is linear; True shows the tails
  config.entropy_temperatures = tuple(float(t) for t in np.geomspace(0.01, 10.0, 61))
  return config_lib.apply(config, arg)


def curves(config):
  """(s [M], r [T, M], entropy [T']) for the config's grids."""
  s, r = analysis.relative_penalty_curves(config.temperatures, num_points=config.num_points)
  grid = jnp.asarray(config.entropy_temperatures, jnp.float32)
  entropy = analysis.over_temperatures(analysis.penalty_entropy, grid, jnp.ones(1), s[None, :])
  return np.asarray(s), np.asarray(r), np.asarray(entropy[:, 0])


def claims(config, computed=None) -> list[reporting.Claim]:
  """Hardness awareness on the computed curves (`curves(config)`, computed if not
  given): as tau falls, the hardest negative's relative penalty grows; the entropy
  of r rises strictly with tau."""
  _, r, entropy = computed or curves(config)
  taus = list(config.temperatures)
  order = np.argsort(taus)
  hardest = [float(r[i, -1]) for i in order]
  uniform = math.log(config.num_points)
  return [
    reporting.Claim(
      "r(s) steepens toward s = 1 as tau falls: the hardest negative's relative penalty "
      "grows as tau falls",
      all(a > b for a, b in itertools.pairwise(hardest)),
      "r(s = 1) at tau "
      + ", ".join(f"{taus[i]:g}: {h:.3g}" for i, h in zip(order, hardest, strict=True))
      + f" (uniform: 1/{config.num_points} = {1 / config.num_points:.3g}).",
      {"temperatures": [taus[i] for i in order], "hardest_penalty": hardest},
    ),
    reporting.Claim(
      "The entropy of r rises monotonically with tau (hardness awareness fades)",
      bool(np.all(np.diff(entropy) > 0)),
      f"{entropy[0]:.2f} nats at tau = {config.entropy_temperatures[0]:g}, "
      f"{entropy[-1]:.2f} at tau = {config.entropy_temperatures[-1]:g}; log "
      f"{config.num_points} = {uniform:.2f} as tau -> infinity.",
      {"entropy": entropy.tolist(), "uniform": uniform},
    ),
  ]


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """relative_penalty.png, its CSVs and report.md; `entries` must be empty (no runs)."""
  if entries:
    raise ValueError("relative_penalty is an analysis without training runs.")
  storage.makedirs(workdir)
  computed = curves(config)
  s, r, entropy = computed
  paths = {
    "figure": os.path.join(workdir, "relative_penalty.png"),
    "curves": os.path.join(workdir, "relative_penalty.csv"),
    "entropy": os.path.join(workdir, "penalty_entropy.csv"),
  }
  reporting.write_csv(
    paths["entropy"],
    ["temperature", "entropy_nats"],
    ([float(t), float(h)] for t, h in zip(config.entropy_temperatures, entropy, strict=True)),
  )
  fig, (ax_r, ax_h) = plt.subplots(1, 2, figsize=(11, 4.2))
  m = config.num_points
  for t, curve in zip(config.temperatures, r, strict=True):
    ax_r.plot(s, curve, label=f"tau = {t:g}")
  if config.log_scale:
    ax_r.set_yscale("log")
    ax_r.set_ylim(bottom=1e-12)
  ax_r.set_xlabel("similarity s of the negative to the anchor")
  ax_r.set_ylabel("relative penalty r(s)" + (" (log scale)" if config.log_scale else ""))
  ax_r.set_title(f"Relative penalty, M = {m} negatives uniform on [-1, 1]")
  ax_r.legend(fontsize=8)
  ax_h.semilogx(config.entropy_temperatures, entropy)
  ax_h.axhline(math.log(m), ls="--", c="gray", label=f"log M = log {m} (uniform penalty)")
  ax_h.set_xlabel("temperature tau")
  ax_h.set_ylabel("entropy of r (nats)")
  ax_h.set_title("Hardness awareness: entropy falls as tau falls")
  ax_h.legend(fontsize=8)
  reporting.save_figure(
    fig,
    paths["figure"],
    header=["similarity"] + [f"r_tau={t:g}" for t in config.temperatures],
    rows=([float(s[j])] + [float(x) for x in r[:, j]] for j in range(len(s))),
    dpi=120,
  )
  return reporting.write_report(
    workdir,
    "relative_penalty",
    title="Wang & Liu (CVPR 2021), Fig. 3: the relative penalty (Eq. 5) across tau",
    intro=f"{config.num_points} negatives evenly spaced on s in [-1, 1]; r(s) = "
    "exp(s / tau) / sum_k exp(s_k / tau), from the gradients of the contrastive loss. "
    "The paper gives this figure without numbers.",
    tables=[],
    claims=claims(config, computed),
    figures=[("relative penalty and its entropy", "relative_penalty.png")],
    paths=paths,
  )
