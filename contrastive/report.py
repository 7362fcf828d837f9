"""Figures and tables written to a workdir.

Each writer takes plain arrays or a workdir and writes PNG figures beside CSV
files holding exactly the numbers plotted, so a figure can be re-drawn or checked
without re-running anything.
"""

import csv
import os

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")  # Headless: CI, TPU hosts and SSH sessions have no display.
from matplotlib import pyplot as plt  # noqa: E402

from contrastive import analysis  # noqa: E402


def write_csv(path: str, header: list[str], rows) -> None:
  """Writes `rows` (an iterable of sequences) under `header` to `path`."""
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def write_relative_penalty_figure(
  workdir: str, *, temperatures, num_points: int, entropy_temperatures
) -> dict[str, str]:
  """Wang & Liu's Fig. 3: the relative penalty r(s) against similarity, per tau.

  Writes `relative_penalty.png` (left: r(s) on a log scale for each tau; right:
  the entropy of r against tau over `entropy_temperatures`) and the plotted
  numbers in `relative_penalty.csv` and `penalty_entropy.csv`.

  Args:
    workdir: output directory (created if missing).
    temperatures: the curves' temperatures.
    num_points: negatives evenly spaced over s in [-1, 1] (see
      `analysis.relative_penalty_curves`).
    entropy_temperatures: the temperatures of the entropy panel.

  Returns:
    The paths written, by name.
  """
  os.makedirs(workdir, exist_ok=True)
  s, r = analysis.relative_penalty_curves(temperatures, num_points=num_points)
  grid = jnp.asarray(entropy_temperatures, jnp.float32)
  entropy = analysis.over_temperatures(analysis.penalty_entropy, grid, jnp.ones(1), s[None, :])[
    :, 0
  ]
  paths = {
    "figure": os.path.join(workdir, "relative_penalty.png"),
    "curves": os.path.join(workdir, "relative_penalty.csv"),
    "entropy": os.path.join(workdir, "penalty_entropy.csv"),
  }
  write_csv(
    paths["curves"],
    ["similarity"] + [f"r_tau={t:g}" for t in temperatures],
    ([float(s[j])] + [float(x) for x in r[:, j]] for j in range(len(s))),
  )
  write_csv(
    paths["entropy"],
    ["temperature", "entropy_nats"],
    ([float(t), float(h)] for t, h in zip(entropy_temperatures, entropy, strict=True)),
  )

  fig, (ax_r, ax_h) = plt.subplots(1, 2, figsize=(11, 4.2))
  for t, curve in zip(temperatures, r, strict=True):
    ax_r.semilogy(s, curve, label=f"tau = {t:g}")
  ax_r.set_xlabel("similarity s of the negative to the anchor")
  ax_r.set_ylabel("relative penalty r(s)")
  ax_r.set_ylim(bottom=1e-12)
  ax_r.set_title(f"Relative penalty, {num_points} negatives uniform on [-1, 1]")
  ax_r.legend(fontsize=8)
  ax_h.semilogx(grid, entropy)
  ax_h.axhline(float(jnp.log(num_points)), ls="--", c="gray", label="log M (uniform)")
  ax_h.set_xlabel("temperature tau")
  ax_h.set_ylabel("entropy of r (nats)")
  ax_h.set_title("Hardness awareness: entropy falls as tau falls")
  ax_h.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(paths["figure"], dpi=120)
  plt.close(fig)
  return paths
