"""Figures and tables written to a workdir.

Each writer takes plain arrays or a workdir and writes PNG figures beside CSV
files holding exactly the numbers plotted, so a figure can be re-drawn or checked
without re-running anything.
"""

import csv
import itertools
import math
import os
import statistics

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")  # Headless: CI, TPU hosts and SSH sessions have no display.
from matplotlib import pyplot as plt  # noqa: E402

from contrastive import analysis  # noqa: E402


def _save_figure(fig, path: str, *, dpi: int = 150) -> None:
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)


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
  _save_figure(fig, paths["figure"], dpi=120)
  return paths


# ----------------------------------------------------------------------------------
# Experiment reports: WORKDIR/report.md from a sweep's entries (sweep.json "runs").


def _claim(holds: bool) -> str:
  return "**holds**" if holds else "**does not hold**"


# Chen et al. Fig. 5a, MNIST, online linear classifier: {tau: {bits: accuracy}}.
RANDBIT_PUBLISHED = {
  0.05: {0: 0.8992, 5: 0.7063, 10: 0.3299, 15: 0.1426, 20: 0.0990},
  0.1: {0: 0.8916, 5: 0.6118, 10: 0.1867, 15: 0.0980, 20: 0.1033},
  0.2: {0: 0.8998, 5: 0.3299, 10: 0.1035, 15: 0.1003, 20: 0.0989},
}


def write_randbit_report(workdir: str, entries: list[dict], config) -> dict[str, str]:
  """RandBit (Chen et al. Fig. 5a): linear accuracy against bits, per tau.

  Writes report.md (our accuracy beside the published MNIST number, and the claim
  "accuracy falls as bits grow, for every tau" checked on our numbers twice:
  strictly, never higher at more bits; and within sampling noise, no rise beyond
  2 binomial standard errors with a total drop of at least 0.2),
  randbit_accuracy.png and randbit_accuracy.csv.
  """
  acc: dict[float, dict[int, float]] = {}
  for e in entries:
    cfg = e["config"]
    acc.setdefault(cfg["loss"]["temperature"], {})[cfg["data"]["randbit_bits"]] = e["results"][
      "linear_accuracy"
    ]
  taus = sorted(acc)
  bits = sorted({b for per in acc.values() for b in per})
  paths = {
    "report": os.path.join(workdir, "report.md"),
    "figure": os.path.join(workdir, "randbit_accuracy.png"),
    "table": os.path.join(workdir, "randbit_accuracy.csv"),
  }
  write_csv(
    paths["table"],
    ["temperature", "bits", "linear_accuracy", "published_mnist"],
    [
      (t, b, acc[t].get(b, ""), RANDBIT_PUBLISHED.get(t, {}).get(b, "")) for t in taus for b in bits
    ],
  )
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for i, t in enumerate(taus):
    xs = [b for b in bits if b in acc[t]]
    ax.plot(xs, [acc[t][b] for b in xs], "o-", color=f"C{i}", label=f"ours, tau={t:g}")
    if t in RANDBIT_PUBLISHED:
      pub = RANDBIT_PUBLISHED[t]
      ax.plot(list(pub), list(pub.values()), "x--", color=f"C{i}", alpha=0.6)
  ax.set_xlabel("RandBit bits")
  ax.set_ylabel("linear accuracy")
  ax.set_title("RandBit (x--: published, MNIST)")
  ax.legend(fontsize=7)
  _save_figure(fig, paths["figure"], dpi=150)

  lines = [
    "# RandBit: easy bits suppress the digit feature (Chen et al. 2021, Fig. 5a)",
    "",
    f"Dataset `{config.data.name}`, {config.model.encoder}, batch {config.data.batch_size}, "
    f"{config.train.num_epochs} epochs, cross-view negatives. Linear accuracy of a probe "
    "on frozen features (the paper: an online linear classifier on MNIST); "
    "published numbers in parentheses.",
    "",
    "| tau | " + " | ".join(f"{b} bits" for b in bits) + " |",
    "|---|" + "---|" * len(bits),
  ]
  for t in taus:
    cells = []
    for b in bits:
      ours = f"{acc[t][b]:.3f}" if b in acc[t] else "-"
      pub = RANDBIT_PUBLISHED.get(t, {}).get(b)
      cells.append(ours + (f" ({pub:.3f})" if pub is not None else ""))
    lines.append(f"| {t:g} | " + " | ".join(cells) + " |")
  complete = all(set(acc[t]) == set(bits) for t in taus)
  lines += ["", "## Claims", ""]
  if not complete:
    lines.append("The sweep is incomplete; claims are checked when every run has finished.")
  else:
    # Sampling noise of an accuracy p on n test images: sqrt(p (1 - p) / n).
    n_test = min(e["results"]["test_examples"] for e in entries)

    def rises(a, b, allowance):
      return b > a + allowance * math.sqrt(max(a * (1 - a), b * (1 - b)) / n_test)

    strict = [
      not any(rises(acc[t][a], acc[t][b], 0) for a, b in itertools.pairwise(bits)) for t in taus
    ]
    noisy = [
      not any(rises(acc[t][a], acc[t][b], 2) for a, b in itertools.pairwise(bits)) for t in taus
    ]
    drop = [acc[t][bits[0]] - acc[t][bits[-1]] for t in taus]
    detail = "; ".join(f"tau {t:g}: " + " -> ".join(f"{acc[t][b]:.3f}" for b in bits) for t in taus)
    lines += [
      f"- Accuracy falls as bits grow, for every tau, read strictly (never higher at more "
      f"bits): {_claim(all(strict))}. {detail}.",
      f"- The same claim within sampling noise (no rise beyond 2 standard errors of an "
      f"accuracy on {n_test} test images, sqrt(p(1 - p)/{n_test}); {bits[0]} -> {bits[-1]} "
      f"bits loses at least 0.2): {_claim(all(noisy) and min(drop) >= 0.2)}. Drops from "
      f"{bits[0]} to {bits[-1]} bits: "
      + ", ".join(f"tau {t:g} {d:.3f}" for t, d in zip(taus, drop, strict=True))
      + ". Once accuracy reaches chance it fluctuates; the published numbers do too "
      "(tau 0.1: 0.0980 at 15 bits, 0.1033 at 20).",
    ]
  lines += ["", "![accuracy against bits](randbit_accuracy.png)", ""]
  with open(paths["report"], "w") as f:
    f.write("\n".join(lines))
  return paths


# Wang & Liu Table 1: {dataset: {metric: {column: value}}}; columns "C0.07",
# "H0.3", ..., "simple", "hard_simple"; metrics acc (%), -L_unif, tolerance.
_T1_COLUMNS = (
  "C0.07", "C0.3", "C0.7", "C1.0", "simple", "H0.07", "H0.3", "H0.7", "H1.0", "hard_simple"
)  # fmt: skip
_T1_ROWS = {
  "cifar10": (
    (79.75, 83.27, 82.69, 82.21, 74.83, 79.2, 83.63, 84.19, 84.19, 84.84),
    (3.86, 3.60, 3.17, 2.96, 1.68, 3.88, 3.89, 3.87, 3.86, 3.85),
    (0.04, 0.178, 0.333, 0.372, 0.61, 0.034, 0.0267, 0.030, 0.030, 0.030),
  ),
  "cifar100": (
    (51.82, 56.44, 50.99, 48.33, 39.31, 50.77, 56.55, 57.54, 56.77, 55.71),
    (3.86, 3.60, 3.18, 2.96, 2.12, 3.87, 3.88, 3.87, 3.86, 3.86),
    (0.10, 0.269, 0.331, 0.343, 0.39, 0.088, 0.124, 0.158, 0.172, 0.174),
  ),
  "svhn_cropped": (
    (92.55, 95.47, 94.17, 92.07, 70.83, 91.82, 94.79, 95.02, 95.26, 94.99),
    (3.88, 3.65, 3.27, 3.05, 1.50, 3.89, 3.91, 3.90, 3.88, 3.85),
    (0.032, 0.137, 0.186, 0.197, 0.074, 0.025, 0.021, 0.021, 0.023, 0.026),
  ),
  "imagenet100": (
    (71.53, 75.10, 69.03, 63.57, 48.09, 68.33, 74.21, 74.70, 74.28, 74.31),
    (3.917, 3.693, 3.323, 3.08, 1.742, 3.929, 3.932, 3.927, 3.923, 3.917),
    (0.093, 0.380, 0.427, 0.456, 0.528, 0.067, 0.096, 0.121, 0.134, 0.157),
  ),
}
TABLE1_PUBLISHED = {
  dataset: {
    metric: dict(zip(_T1_COLUMNS, values, strict=True))
    for metric, values in zip(("acc", "-L_unif", "tolerance"), rows, strict=True)
  }
  for dataset, rows in _T1_ROWS.items()
}


def _t1_column(loss_config) -> str:
  name = loss_config["name"]
  if name in ("simple", "hard_simple"):
    return name
  return ("C" if name == "contrastive" else "H") + f"{loss_config['temperature']:g}"


# -L_unif below this: the embeddings have (nearly) collapsed to a point (0 = all equal).
COLLAPSED_UNIFORMITY = 0.1


def write_wang_liu_table1_report(workdir: str, entries: list[dict], config) -> dict[str, str]:
  """Wang & Liu Table 1 from a sweep: report.md, table1.csv and uniformity_tolerance.png.

  Our figures are the linear accuracy (%), the uniformity -L_unif and the
  tolerance on the test split; the published ones are the same dataset's, or
  CIFAR-10's for datasets the paper did not use. Claims (spec 1.5), on our numbers:
  1. contrastive: -L_unif never rises and tolerance never falls from one tau to the
     next larger; 2. contrastive accuracy is an inverted U (best tau strictly inside
     the grid); 3. hard contrastive: the range (max - min) of -L_unif across tau is
     narrower than the contrastive loss's and its mean is no lower; 4. the simple
     loss has the lowest accuracy of the grid and HardSimple recovers more than half
     of the gap to the best contrastive run.
  """
  ours: dict[str, dict[str, float]] = {}
  for e in entries:
    r = e["results"]
    ours[_t1_column(e["config"]["loss"])] = {
      "acc": 100 * r["linear_accuracy"],
      "-L_unif": r["uniformity"],
      "tolerance": r["tolerance"],
    }
  taus = sorted({float(c[1:]) for c in ours if c[0] in "CH"})
  columns = [f"C{t:g}" for t in taus] + ["simple"] + [f"H{t:g}" for t in taus] + ["hard_simple"]
  reference = config.data.name if config.data.name in TABLE1_PUBLISHED else "cifar10"
  published = TABLE1_PUBLISHED[reference]
  paths = {
    "report": os.path.join(workdir, "report.md"),
    "table": os.path.join(workdir, "table1.csv"),
    "figure": os.path.join(workdir, "uniformity_tolerance.png"),
  }
  metrics_ = ("acc", "-L_unif", "tolerance")
  write_csv(
    paths["table"],
    ["column"] + [f"{m}_ours" for m in metrics_] + [f"{m}_published_{reference}" for m in metrics_],
    [
      [c]
      + [ours.get(c, {}).get(m, "") for m in metrics_]
      + [published[m].get(c, "") for m in metrics_]
      for c in columns
    ],
  )
  fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
  for ax, m in zip(axes, metrics_, strict=True):
    for prefix, label in (("C", "contrastive"), ("H", "hard contrastive")):
      xs = [t for t in taus if f"{prefix}{t:g}" in ours]
      ax.plot(xs, [ours[f"{prefix}{t:g}"][m] for t in xs], "o-", label=label)
    for name in ("simple", "hard_simple"):
      if name in ours:
        ax.axhline(
          ours[name][m], ls="--", lw=1, color="C2" if name == "simple" else "C3", label=name
        )
    ax.set_xlabel("tau")
    ax.set_title(m)
  axes[0].legend(fontsize=7)
  _save_figure(fig, paths["figure"], dpi=150)

  def cell(c, m):
    o = ours.get(c, {}).get(m)
    p = published[m].get(c)
    text = "-" if o is None else (f"{o:.2f}" if m == "acc" else f"{o:.3f}")
    return text + (f" ({p:g})" if p is not None else "")

  lines = [
    "# Wang & Liu (CVPR 2021), Table 1",
    "",
    f"Dataset `{config.data.name}`, {config.model.encoder}, layout `{config.loss.layout}`, "
    f"batch {config.data.batch_size}, {config.train.num_epochs} epochs per run. "
    f"C = contrastive, H = hard contrastive at tau. In parentheses: the published "
    f"{reference} numbers where the paper has that column.",
    "",
    "| metric | " + " | ".join(columns) + " |",
    "|---|" + "---|" * len(columns),
  ]
  for m in metrics_:
    lines.append(f"| {m} | " + " | ".join(cell(c, m) for c in columns) + " |")
  lines += ["", "## Claims (spec 1.5), on our numbers", ""]
  if set(columns) - set(ours) or len(taus) < 3:
    lines.append("The sweep is incomplete; claims are checked when every run has finished.")
  else:
    c_unif = [ours[f"C{t:g}"]["-L_unif"] for t in taus]
    c_tol = [ours[f"C{t:g}"]["tolerance"] for t in taus]
    c_acc = [ours[f"C{t:g}"]["acc"] for t in taus]
    h_unif = [ours[f"H{t:g}"]["-L_unif"] for t in taus]

    def seq(xs, fmt="{:.3f}"):
      return " -> ".join(fmt.format(x) for x in xs)

    narrower = max(h_unif) - min(h_unif) < max(c_unif) - min(c_unif)
    high = statistics.mean(h_unif) >= statistics.mean(c_unif)
    unif_falls = all(a >= b for a, b in itertools.pairwise(c_unif))
    tol_rises = all(a <= b for a, b in itertools.pairwise(c_tol))
    best = max(range(len(taus)), key=lambda i: c_acc[i])
    all_acc = {c: v["acc"] for c, v in ours.items()}
    simple_lowest = all_acc["simple"] == min(all_acc.values())
    gap = max(c_acc) - all_acc["simple"]
    recovered = (all_acc["hard_simple"] - all_acc["simple"]) / gap if gap > 0 else float("nan")
    lines += [
      f"1. As tau grows ({seq(taus, '{:g}')}), uniformity falls and tolerance rises for the "
      f"contrastive loss: {_claim(unif_falls and tol_rises)}. -L_unif {seq(c_unif)} "
      f"({'never rises' if unif_falls else 'rises somewhere'}); tolerance {seq(c_tol)} "
      f"({'never falls' if tol_rises else 'falls somewhere'}).",
      f"2. Contrastive accuracy is an inverted U in tau: "
      f"{_claim(0 < best < len(taus) - 1)}. Accuracy {seq(c_acc, '{:.2f}')}, best at "
      f"tau = {taus[best]:g}.",
      f"3. The hard contrastive loss keeps uniformity high and within a narrower band "
      f"across tau: {_claim(narrower and high)}. Range of -L_unif: hard "
      f"{max(h_unif) - min(h_unif):.3f} ({seq(h_unif)}) against contrastive "
      f"{max(c_unif) - min(c_unif):.3f} ({'narrower' if narrower else 'not narrower'}); mean "
      f"-L_unif hard {statistics.mean(h_unif):.3f} against contrastive "
      f"{statistics.mean(c_unif):.3f} ({'as high or higher' if high else 'lower'}).",
      f"4. The simple loss has the lowest accuracy of the grid and HardSimple recovers most "
      f"of the gap: {_claim(simple_lowest and recovered > 0.5)}. Simple "
      f"{all_acc['simple']:.2f} (lowest: {min(all_acc, key=all_acc.get)} "
      f"{min(all_acc.values()):.2f}), HardSimple {all_acc['hard_simple']:.2f}, best "
      f"contrastive {max(c_acc):.2f}: {100 * recovered:.0f}% of the gap recovered.",
    ]
  collapsed = [c for c in columns if c in ours and ours[c]["-L_unif"] < COLLAPSED_UNIFORMITY]
  if collapsed:
    lines += [
      "",
      f"Collapsed runs (-L_unif below {COLLAPSED_UNIFORMITY}: the test embeddings nearly "
      f"coincide): {', '.join(collapsed)}.",
    ]
  lines += ["", "![uniformity and tolerance against tau](uniformity_tolerance.png)", ""]
  with open(paths["report"], "w") as f:
    f.write("\n".join(lines))
  return paths


def write_embedding_figure(path: str, runs, *, max_examples: int = 1000) -> str:
  """A 2-D embedding of each run's test features, coloured by label: one panel per run.

  Each run's model is rebuilt from its checkpoint (`workdir.test_features`); the
  panel is the first two principal components of its L2-normalised encoder
  features on the first `max_examples` test images. The plotted coordinates go to
  `path` with .csv for .png.

  Args:
    path: the PNG to write.
    runs: (title, run directory) pairs.
    max_examples: test images per panel.

  Returns:
    `path`.
  """
  from contrastive import workdir as workdir_lib  # noqa: PLC0415 - imports train

  runs = list(runs)
  cols = min(len(runs), 4)
  rows_ = -(-len(runs) // cols)
  fig, axes = plt.subplots(rows_, cols, figsize=(3 * cols, 3 * rows_), squeeze=False)
  table = []
  for ax, (title, run_dir) in zip(axes.flat, runs, strict=False):
    feats, _, labels = workdir_lib.test_features(
      workdir_lib.load(run_dir), max_examples=max_examples
    )
    xy = workdir_lib.pca_2d(feats)
    ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=2, vmin=0, vmax=9)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    table += [
      (title, i, int(y), float(a), float(b))
      for i, (y, (a, b)) in enumerate(zip(labels, xy, strict=True))
    ]
  for ax in list(axes.flat)[len(runs) :]:
    ax.axis("off")
  fig.suptitle("test features, first two principal components, coloured by label", fontsize=9)
  _save_figure(fig, path, dpi=120)
  write_csv(os.path.splitext(path)[0] + ".csv", ["run", "index", "label", "pc1", "pc2"], table)
  return path


def write_local_separation_report(workdir: str, entries: list[dict], config) -> dict[str, str]:
  """Wang & Liu's Fig. 8: the positive and the 10 nearest negatives, across tau.

  From each run's `local_separation` result (test images: a view's similarity to
  the other view of itself, and its 10 largest similarities to other images'
  views, averaged over anchors). Writes report.md (the profile table and the claim
  "smaller tau gives a larger gap between the positive and the nearest negative",
  per loss), similarity_profile.png/.csv and embedding.png/.csv (2-D test
  embeddings of every run).
  """
  rows = []
  for e in entries:
    loss = e["config"]["loss"]
    rows.append((loss["name"], float(loss["temperature"]), e["results"]["local_separation"], e))
  rows.sort(key=lambda r: (r[0], r[1]))
  k = len(rows[0][2]) - 1 if rows else 10
  paths = {
    "report": os.path.join(workdir, "report.md"),
    "figure": os.path.join(workdir, "similarity_profile.png"),
    "table": os.path.join(workdir, "similarity_profile.csv"),
    "embedding": os.path.join(workdir, "embedding.png"),
  }
  header = ["pos"] + [f"n{i}" for i in range(1, k + 1)]
  write_csv(paths["table"], ["loss", "temperature", *header], [(n, t, *p) for n, t, p, _ in rows])
  names = sorted({n for n, *_ in rows})
  fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
  for ax, name in zip(axes[0], names, strict=True):
    mine = [r for r in rows if r[0] == name]
    for i, (_, t, profile, _) in enumerate(mine):
      color = plt.cm.viridis(i / max(len(mine) - 1, 1))
      ax.plot(range(k + 1), profile, "o-", ms=3, color=color, label=f"tau={t:g}")
    ax.set_xticks(range(k + 1), header, fontsize=7)
    ax.set_ylabel("cosine similarity")
    ax.set_title(name)
    ax.legend(fontsize=7)
  _save_figure(fig, paths["figure"], dpi=150)
  write_embedding_figure(
    paths["embedding"],
    [(f"{n} tau={t:g}", os.path.join(workdir, e["name"])) for n, t, _, e in rows],
  )

  lines = [
    "# Wang & Liu (CVPR 2021), Fig. 8: local separation across tau",
    "",
    f"Dataset `{config.data.name}`, {config.model.encoder}, layout `{config.loss.layout}`, "
    f"batch {config.data.batch_size}, {config.train.num_epochs} epochs per run. Mean over "
    f"test anchors of the similarity to the positive (the other view) and to the {k} "
    "nearest negatives; the paper gives this figure without a table of numbers.",
    "",
    "| loss | tau | " + " | ".join(header) + " | pos - n1 |",
    "|---|---|" + "---|" * (k + 2),
  ]
  for n, t, p, _ in rows:
    lines.append(
      f"| {n} | {t:g} | " + " | ".join(f"{v:.3f}" for v in p) + f" | {p[0] - p[1]:.3f} |"
    )
  lines += ["", "## Claim, on our numbers", ""]
  for name in names:
    mine = [r for r in rows if r[0] == name]
    if len(mine) < 2:
      continue
    gaps = [p[0] - p[1] for _, _, p, _ in mine]
    falls = all(a > b for a, b in itertools.pairwise(gaps))
    lines.append(
      f"- `{name}`: smaller tau gives a larger gap between the positive and the nearest "
      f"negative (the gap falls as tau grows): {_claim(falls)}. Gap at tau "
      + ", ".join(f"{t:g}: {g:.3f}" for (_, t, _, _), g in zip(mine, gaps, strict=True))
      + "."
    )
  lines += [
    "",
    "![similarity profile](similarity_profile.png)",
    "",
    "![2-D test embeddings](embedding.png)",
    "",
  ]
  with open(paths["report"], "w") as f:
    f.write("\n".join(lines))
  return paths


# "All these losses reach similar linear accuracy" with a deep head: read as every
# loss within this many points (percent) of each other at the deepest head.
SIMILAR_ACCURACY_POINTS = 5.0


def write_generalized_losses_report(workdir: str, entries: list[dict], config) -> dict[str, str]:
  """Chen et al. Fig. 1: linear accuracy of each generalized loss at each head depth.

  Writes report.md (accuracy table, losses by head depth, and the finding "with a
  deep projection head all these losses reach similar linear accuracy": the spread
  max - min across losses at the deepest head is at most SIMILAR_ACCURACY_POINTS
  and no larger than at the shallowest), generalized_losses.png and .csv.
  """
  from configs.experiments import generalized_losses  # noqa: PLC0415 - the row labels

  acc: dict[str, dict[int, float]] = {}
  for e in entries:
    label = generalized_losses.loss_label(e["config"]["loss"])
    acc.setdefault(label, {})[e["config"]["model"]["head_depth"]] = (
      100 * e["results"]["linear_accuracy"]
    )
  labels = [name for name, _ in generalized_losses.LOSSES if name in acc]
  depths = sorted({d for per in acc.values() for d in per})
  paths = {
    "report": os.path.join(workdir, "report.md"),
    "figure": os.path.join(workdir, "generalized_losses.png"),
    "table": os.path.join(workdir, "generalized_losses.csv"),
  }
  write_csv(
    paths["table"],
    ["loss", "head_depth", "linear_accuracy_percent"],
    [(name, d, acc[name][d]) for name in labels for d in depths if d in acc[name]],
  )
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name in labels:
    xs = [d for d in depths if d in acc[name]]
    ax.plot(xs, [acc[name][d] for d in xs], "o-", label=name)
  ax.set_xticks(depths)
  ax.set_xlabel("projection head depth")
  ax.set_ylabel("linear accuracy (%)")
  ax.legend(fontsize=7)
  _save_figure(fig, paths["figure"], dpi=150)

  lines = [
    "# Chen, Luo & Li (NeurIPS 2021), Fig. 1: generalized contrastive losses",
    "",
    f"Dataset `{config.data.name}`, {config.model.encoder}, batch {config.data.batch_size}, "
    f"{config.train.num_epochs} epochs per run. Linear accuracy (%) of a probe on frozen "
    "encoder features. The paper gives this figure as bars without a table of numbers.",
    "",
    "| loss | " + " | ".join(f"head depth {d}" for d in depths) + " |",
    "|---|" + "---|" * len(depths),
  ]
  for name in labels:
    lines.append(
      f"| {name} | "
      + " | ".join(f"{acc[name][d]:.2f}" if d in acc[name] else "-" for d in depths)
      + " |"
    )
  lines += ["", "## Claim, on our numbers", ""]
  complete = len(depths) >= 2 and all(set(acc[name]) == set(depths) for name in labels)
  if not complete or len(labels) < 2:
    lines.append("The sweep is incomplete; the claim is checked when every run has finished.")
  else:
    spread = {d: max(acc[n][d] for n in labels) - min(acc[n][d] for n in labels) for d in depths}
    deep, shallow = depths[-1], depths[0]
    holds = spread[deep] <= SIMILAR_ACCURACY_POINTS and spread[deep] <= spread[shallow]
    lines.append(
      f"- With the deepest head (depth {deep}) all losses reach similar linear accuracy "
      f"(within {SIMILAR_ACCURACY_POINTS:g} points, and closer than with depth {shallow}): "
      f"{_claim(holds)}. Spread (max - min across losses) by depth: "
      + ", ".join(f"{d}: {spread[d]:.2f}" for d in depths)
      + "."
    )
  lines += ["", "![accuracy by loss and head depth](generalized_losses.png)", ""]
  with open(paths["report"], "w") as f:
    f.write("\n".join(lines))
  return paths


# Huang et al. Table: ImageNet-1K linear top-1 (%) by batch size, SimCLR and SimCLR + MACL.
MACL_PUBLISHED = {
  "batch": (128, 256, 512, 1024, 2048),
  "simclr": (60.6, 61.9, 64.0, 65.3, 66.1),
  "macl": (61.6, 64.3, 65.2, 66.5, 66.9),
}


def write_macl_report(workdir: str, entries: list[dict], config) -> dict[str, str]:
  """MACL against fixed temperatures: report.md, macl.csv and macl_temperature.png.

  Our figures: linear accuracy, uniformity and tolerance of each run, and for MACL
  runs the adaptive temperature logged during training (its last value and the
  range it moved in). The claim "MACL improves on the fixed-temperature loss" is
  checked against the fixed run at MACL's tau_0 and against the best fixed run.
  """
  from contrastive import workdir as workdir_lib  # noqa: PLC0415 - imports train

  rows = []
  for e in entries:
    loss = e["config"]["loss"]
    if loss["name"] == "macl":
      label = (
        f"MACL {loss['macl_schedule']} "
        f"(tau_0={loss['temperature']:g}, alpha={loss['macl_alpha']:g})"
      )
    else:
      label = f"fixed tau={loss['temperature']:g}"
    run_dir = os.path.join(workdir, e["name"])
    tau = None
    if loss["name"] == "macl" and os.path.exists(os.path.join(run_dir, "metrics.jsonl")):
      tau = workdir_lib.load(run_dir).series("temperature")
    rows.append((label, loss, e["results"], tau))
  paths = {
    "report": os.path.join(workdir, "report.md"),
    "table": os.path.join(workdir, "macl.csv"),
    "figure": os.path.join(workdir, "macl_temperature.png"),
  }
  write_csv(
    paths["table"],
    ["run", "linear_accuracy", "uniformity", "tolerance", "final_temperature"],
    [
      (label, r["linear_accuracy"], r["uniformity"], r["tolerance"], "" if t is None else t[1][-1])
      for label, _, r, t in rows
    ],
  )
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for label, loss, _, t in rows:
    if t is not None:
      ax.plot(t[0], t[1], label=label)
    else:
      ax.axhline(loss["temperature"], ls="--", lw=1, color="gray")
  ax.set_xlabel("step")
  ax.set_ylabel("temperature")
  ax.set_title("MACL's adaptive tau (dashed: fixed runs)", fontsize=9)
  ax.legend(fontsize=7)
  _save_figure(fig, paths["figure"], dpi=150)

  lines = [
    "# Huang et al. (ICML 2023), MACL: adaptive against fixed temperature",
    "",
    f"Dataset `{config.data.name}`, {config.model.encoder}, layout `{config.loss.layout}`, "
    f"batch {config.data.batch_size}, {config.train.num_epochs} epochs per run.",
    "",
    "| run | linear acc (%) | -L_unif | tolerance | tau at the end (range) |",
    "|---|---|---|---|---|",
  ]
  for label, loss, r, t in rows:
    tau_text = (
      f"{loss['temperature']:g}"
      if t is None
      else f"{t[1][-1]:.4f} ({t[1].min():.4f} - {t[1].max():.4f})"
    )
    lines.append(
      f"| {label} | {100 * r['linear_accuracy']:.2f} | {r['uniformity']:.3f} | "
      f"{r['tolerance']:.3f} | {tau_text} |"
    )
  pub = MACL_PUBLISHED
  lines += [
    "",
    "Published (ImageNet-1K linear top-1 %, batch "
    + " / ".join(str(b) for b in pub["batch"])
    + "): SimCLR "
    + " / ".join(f"{v:g}" for v in pub["simclr"])
    + ", SimCLR + MACL "
    + " / ".join(f"{v:g}" for v in pub["macl"])
    + ".",
    "",
    "## Claim, on our numbers",
    "",
  ]
  fixed = {
    loss["temperature"]: r["linear_accuracy"] for _, loss, r, _ in rows if loss["name"] != "macl"
  }
  macl = [(label, loss, r) for label, loss, r, _ in rows if loss["name"] == "macl"]
  if not fixed or not macl:
    lines.append("The sweep is incomplete; the claim is checked when every run has finished.")
  else:
    best_fixed = max(fixed.values())
    for label, loss, r in macl:
      base = fixed.get(loss["temperature"])
      acc = r["linear_accuracy"]
      versus = (
        f"fixed tau={loss['temperature']:g} {100 * base:.2f}"
        if base is not None
        else "no fixed run at its tau_0"
      )
      lines.append(
        f"- {label} improves on the fixed temperature at its tau_0: "
        f"{_claim(base is not None and acc > base)} ({100 * acc:.2f} against {versus}); "
        f"on the best fixed run ({100 * best_fixed:.2f}): {_claim(acc > best_fixed)}."
      )
  lines += ["", "![adaptive temperature](macl_temperature.png)", ""]
  with open(paths["report"], "w") as f:
    f.write("\n".join(lines))
  return paths


def write_digits_on_images_report(workdir: str, entries: list[dict], config) -> dict[str, str]:
  """Digits on images (Chen et al. Sec. 4): base and digit accuracy against pool size k.

  Writes report.md (both linear accuracies per k, and the claim "as k grows, base
  accuracy drops while digit accuracy rises", read strictly: every step to a larger
  k), digits_on_images.png and .csv.
  """
  rows = sorted(
    (
      e["config"]["data"]["digits_pool"],
      e["results"]["linear_accuracy"],
      e["results"]["digit_linear_accuracy"],
    )
    for e in entries
  )
  paths = {
    "report": os.path.join(workdir, "report.md"),
    "figure": os.path.join(workdir, "digits_on_images.png"),
    "table": os.path.join(workdir, "digits_on_images.csv"),
  }
  write_csv(paths["table"], ["digits_pool", "base_linear_accuracy", "digit_linear_accuracy"], rows)
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ks = [r[0] for r in rows]
  ax.semilogx(ks, [r[1] for r in rows], "o-", label="base labels")
  ax.semilogx(ks, [r[2] for r in rows], "s-", label="pasted digit")
  ax.set_xlabel("distinct digits k")
  ax.set_ylabel("linear accuracy")
  ax.legend(fontsize=7)
  _save_figure(fig, paths["figure"], dpi=150)
  lines = [
    "# Chen, Luo & Li (NeurIPS 2021): digits on images",
    "",
    f"Base dataset `{config.data.name}`, {config.model.encoder}, batch "
    f"{config.data.batch_size}, {config.train.num_epochs} epochs per run; digits of the "
    f"embedded `digits` resized to {config.data.digits_size or 28} px. Linear accuracy of "
    "probes on the same frozen features. With k < 10 fewer than 10 digit classes occur "
    "(k = 1: one digit on every image, digit accuracy 1 trivially). The paper shows "
    "this as a figure without a table of numbers.",
    "",
    "| k | base linear acc | digit linear acc |",
    "|---|---|---|",
    *(f"| {k} | {b:.3f} | {d:.3f} |" for k, b, d in rows),
    "",
    "## Claim, on our numbers",
    "",
  ]
  if len(rows) < 2:
    lines.append("The sweep is incomplete; the claim is checked when every run has finished.")
  else:
    base_falls = all(a[1] >= b[1] for a, b in itertools.pairwise(rows))
    digit_rises = all(a[2] <= b[2] for a, b in itertools.pairwise(rows))
    lines.append(
      f"- As k grows, base accuracy drops while digit accuracy rises: "
      f"{_claim(base_falls and digit_rises)}. Base {' -> '.join(f'{r[1]:.3f}' for r in rows)} "
      f"({'never rises' if base_falls else 'rises somewhere'}); digit "
      f"{' -> '.join(f'{r[2]:.3f}' for r in rows)} "
      f"({'never falls' if digit_rises else 'falls somewhere'}); k = "
      + ", ".join(str(r[0]) for r in rows)
      + "."
    )
  lines += ["", "![accuracy against k](digits_on_images.png)", ""]
  with open(paths["report"], "w") as f:
    f.write("\n".join(lines))
  return paths


REPORTS = {
  "digits_on_images": write_digits_on_images_report,
  "generalized_losses": write_generalized_losses_report,
  "macl": write_macl_report,
  "randbit": write_randbit_report,
  "wang_liu_table1": write_wang_liu_table1_report,
  "local_separation": write_local_separation_report,
}
