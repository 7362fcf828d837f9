"""Figures of finished runs and sweeps: `python -m contrastive.plot DIR [DIR ...]`.

A run's directory (its metrics.jsonl and results.json) gets `curves.png`: the training
loss; the mean positive and negative similarities (and the hardest negative's); the
temperature the loss applied; the batch's uniformity (-L_unif) and alignment; the
online probe's accuracy where it ran; and the test split's similarity profile (the
positive and the nearest negatives, `local_separation`) where it was computed, with
the run's final figures in the title. Every run writes it when it finishes (a single
run and each run of a sweep, `jobs`); this command redraws it, for a run written
before that or by another machine.

A sweep's directory (its sweep.json) gets `sweep.png`: each run's linear accuracy
(mean and spread over its seeds) and where it sits in the uniformity-tolerance plane,
and, with --runs, each finished run's `curves.png` redrawn too.

Each figure is saved with a CSV of the numbers it plots (`reporting.save_figure`).
"""

import argparse
import json
import os
import sys

from contrastive import paths as storage
from contrastive import reporting
from contrastive import sweep

CURVES = "curves.png"
SWEEP_FIGURE = "sweep.png"
# (title, [(logged metric, label)]) of each panel of a run's figure, where logged.
PANELS = (
  ("training loss", [("loss", "loss")]),
  (
    "similarities (cosine)",
    [("pos_sim", "positive"), ("neg_sim", "negatives, mean"), ("neg_sim_max", "hardest negative")],
  ),
  ("temperature applied", [("temperature", "tau")]),
  (
    "batch uniformity and alignment",
    [
      ("batch_uniformity", "-L_unif (higher: more uniform)"),
      ("batch_alignment", "alignment (lower: views closer)"),
    ],
  ),  # fmt: skip
  ("online probe", [("probe_accuracy", "batch accuracy"), ("knn_monitor", "kNN monitor")]),
)


def _rows(run_dir: str) -> list[dict]:
  path = storage.path(run_dir, "metrics.jsonl")
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _logged(rows, name):
  """(steps, values) of a logged metric; -L_unif for the batch uniformity whatever the
  run's version logged (L_unif <= 0 <= -L_unif: before 2026-12-06 runs logged L_unif)."""
  pairs = [(r["step"], r[name]) for r in rows if r.get(name) is not None]
  if name == "batch_uniformity":
    pairs = [(s, abs(v)) for s, v in pairs]
  return [s for s, _ in pairs], [v for _, v in pairs]


def title(results: dict) -> str:
  """The run's final figures in one line, with which way is better."""
  shown = [
    f"{label} {results[key]:.3f}"
    for key, label in (
      ("knn_accuracy", "kNN"),
      ("linear_accuracy", "linear"),
      ("pixel_knn_accuracy", "pixel kNN (baseline)"),
      ("uniformity", "-L_unif"),
      ("tolerance", "tolerance"),
    )
    if isinstance(results.get(key), float)
  ]
  return "test split: " + ", ".join(shown) + " (accuracies: higher is better)"


def draw_run(run_dir: str) -> str:
  """Writes RUN_DIR/curves.png (and .csv) from the run's logs and results; its path."""
  rows = _rows(run_dir)
  results_path = storage.path(run_dir, "results.json")
  results = json.loads(results_path.read_text()) if results_path.exists() else {}
  if not rows and not results:
    raise FileNotFoundError(f"{run_dir} has no metrics.jsonl or results.json: not a run.")
  panels = [(t, [(n, lab) for n, lab in series if _logged(rows, n)[0]]) for t, series in PANELS]
  panels = [(t, series) for t, series in panels if series]
  profile = results.get("local_separation")
  count = len(panels) + (profile is not None)
  cols = min(3, max(count, 1))
  fig, axes = reporting.pyplot().subplots(
    (count + cols - 1) // cols,
    cols,
    figsize=(4.2 * cols, 3.2 * ((count + cols - 1) // cols)),
    squeeze=False,
  )
  axes = list(axes.flat)
  table = []
  for ax, (name, series) in zip(axes, panels, strict=False):
    for metric, label in series:
      steps, values = _logged(rows, metric)
      ax.plot(steps, values, label=label)
      table += [(metric, s, v) for s, v in zip(steps, values, strict=True)]
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("step")
    if len(series) > 1:
      ax.legend(fontsize=7)
  if profile is not None:
    ax = axes[len(panels)]
    ranks = list(range(len(profile)))
    ax.plot(ranks[:1], profile[:1], "o", color="tab:green", label="positive")
    ax.plot(ranks[1:], profile[1:], "o-", color="tab:red", label="nearest negatives")
    ax.set_xticks(ranks, ["pos"] + [str(k) for k in ranks[1:]])
    ax.set_xlabel("rank of the negative (1 = nearest)")
    ax.set_ylabel("cosine similarity to the anchor")
    ax.set_title("similarity profile on the test split", fontsize=9)
    ax.legend(fontsize=7)
    table += [("local_separation", k, v) for k, v in zip(ranks, profile, strict=True)]
  for ax in axes[count:]:
    ax.axis("off")
  if results:
    fig.suptitle(title(results), fontsize=9)
  return reporting.save_figure(
    fig, os.path.join(run_dir, CURVES), header=["metric", "step", "value"], rows=table, dpi=100
  )


def draw_sweep(workdir: str, runs: bool = False) -> list[str]:
  """Writes WORKDIR/sweep.png (and .csv): each run's linear accuracy over its seeds and
  its place in the uniformity-tolerance plane; with `runs`, each finished run's
  curves.png too. Returns the paths written."""
  _, entries = sweep.read(workdir)
  if not entries:
    raise FileNotFoundError(f"{workdir}'s sweep has no finished run yet.")
  groups = reporting.replicas(entries)
  names = [g["overrides"] or g["name"] for g in groups]
  acc = [reporting.accuracy(g) for g in groups]
  unif = [reporting.over_seeds(g, lambda r: r["uniformity"]) for g in groups]
  tol = [reporting.over_seeds(g, lambda r: r["tolerance"]) for g in groups]
  fig, (ax_a, ax_u) = reporting.pyplot().subplots(
    1, 2, figsize=(12, max(3.0, 0.28 * len(groups) + 1.2))
  )
  y = list(range(len(groups)))
  ax_a.barh(y, [a.mean for a in acc], xerr=[a.spread if a.seeds > 1 else 0 for a in acc])
  ax_a.set_yticks(y, names, fontsize=6)
  ax_a.invert_yaxis()
  ax_a.set_xlabel("linear accuracy (higher is better; bars: spread over seeds)")
  ax_u.scatter([u.mean for u in unif], [t.mean for t in tol])
  for k, (u, t) in enumerate(zip(unif, tol, strict=True)):
    ax_u.annotate(str(k + 1), (u.mean, t.mean), fontsize=6)
  ax_u.set_xlabel("-L_unif (higher: more uniform)")
  ax_u.set_ylabel("tolerance (higher: same-class features closer)")
  ax_u.set_title("runs numbered as listed on the left", fontsize=8)
  ax_a.set_yticks(y, [f"{k + 1}. {n}" for k, n in enumerate(names)], fontsize=6)
  written = [
    reporting.save_figure(
      fig,
      os.path.join(workdir, SWEEP_FIGURE),
      header=["run", "seeds", "linear_accuracy", "spread", "uniformity", "tolerance"],
      rows=[
        (n, a.seeds, a.mean, a.spread, u.mean, t.mean)
        for n, a, u, t in zip(names, acc, unif, tol, strict=True)
      ],  # fmt: skip
      dpi=100,
    )
  ]
  if runs:
    written += [draw_run(os.path.join(workdir, e["name"])) for e in entries]
  return written


def draw(path: str, runs: bool = False) -> list[str]:
  """The figures of the run or sweep at `path` (`draw_run` or `draw_sweep`)."""
  if storage.path(path, sweep.SWEEP_FILE).exists():
    return draw_sweep(path, runs=runs)
  return [draw_run(path)]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m contrastive.plot",
    description="Draws curves.png of a finished run, or sweep.png of a sweep.",
  )
  parser.add_argument("dirs", nargs="+", metavar="DIR", help="a run's or a sweep's directory")
  parser.add_argument("--runs", action="store_true", help="a sweep's runs' curves.png too")
  args = parser.parse_args(argv)
  for path in args.dirs:
    try:
      for written in draw(path, runs=args.runs):
        print(written)
    except (FileNotFoundError, ValueError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
