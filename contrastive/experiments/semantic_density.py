"""The test-bed's own prediction: the best temperature against semantic density.

Command (a sweep of 24 runs: 4 within-class spreads x 6 temperatures):
  python run.py --config=configs/experiments/semantic_density.py:scale=latent,seeds=5 \\
    --workdir=DIR

Wang & Liu argue that a small tau pushes apart the hardest negatives, and that when
those are semantically similar instances ("latent positives": the same class) this
costs tolerance and accuracy. On the latent test-bed (`contrastive.data.latent`) how
crowded an instance's same-class neighbours are is a knob,
`data.latent_instance_spread` (instances around their class centre; smaller = more
crowded). The prediction: **the best temperature rises as the same-class neighbours
crowd closer** (as the spread shrinks). The grid was fixed before any run: spreads
{0.1, 0.2, 0.3, 0.45} (0.3 is the test-bed's default) x tau {0.05, 0.1, 0.2, 0.3,
0.5, 1.0}, the contrastive loss at `recipes.latent`.

Writes DIR/report.md: linear accuracy, -L_unif and tolerance for each (spread,
tau); the best tau per spread (each seed's best, their geometric mean and spread),
the claim judged against the seeds' noise, and semantic_density.png (accuracy
against tau per spread; -L_unif and tolerance surfaces).
"""

import math
import os

from matplotlib import pyplot as plt
import numpy as np

from contrastive import config as config_lib
from contrastive import experiments
from contrastive import recipes
from contrastive import reporting

SPREADS = (0.1, 0.2, 0.3, 0.45)
TEMPERATURES = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
FIGURES = (("linear_accuracy", "linear accuracy", 100.0), ("uniformity", "-L_unif", 1.0),
           ("tolerance", "tolerance", 1.0))  # fmt: skip


def get_config(arg=None):
  return experiments.study_config(
    arg,
    scales={"latent": recipes.latent},
    runs=config_lib.grid(data__latent_instance_spread=SPREADS, loss__temperature=TEMPERATURES),
    report="semantic_density",
  )


def grid(entries) -> dict[tuple[float, float], dict[int, dict]]:
  """{(spread, tau): {seed: results}} of the finished runs."""
  cells: dict[tuple[float, float], dict[int, dict]] = {}
  for e in entries:
    cfg = e["config"]
    key = (float(cfg["data"]["latent_instance_spread"]), float(cfg["loss"]["temperature"]))
    cells.setdefault(key, {})[int(cfg["seed"])] = e["results"]
  return cells


def best_temperatures(cells) -> dict[float, tuple[list[float], reporting.Value]]:
  """Per spread: each seed's best tau (highest linear accuracy over the grid's tau)
  and their log2 as a `Value` (its mean is the geometric mean's log2). Seeds missing
  any tau of the spread are left out."""
  out = {}
  for spread in sorted({s for s, _ in cells}):
    taus = sorted(t for s, t in cells if s == spread)
    seeds = set.intersection(*(set(cells[(spread, t)]) for t in taus))
    best = [max(taus, key=lambda t: cells[(spread, t)][seed]["linear_accuracy"])
            for seed in sorted(seeds)]  # fmt: skip
    if best:
      out[spread] = (best, reporting.measure([math.log2(t) for t in best]))
  return out


def claims(cells) -> list[reporting.Claim]:
  best = best_temperatures(cells)
  spreads = sorted(best)
  values = [best[s][1] for s in spreads]
  strict, noisy = reporting.trend(values, -1)
  evidence = "; ".join(
    f"spread {s:g}: best tau {2 ** best[s][1].mean:.3g} (seeds: "
    f"{', '.join(f'{t:g}' for t in best[s][0])})"
    for s in spreads
  )
  return [
    reporting.Claim(
      "The best temperature rises as same-class neighbours crowd closer (it falls as the "
      "within-class spread grows)",
      noisy,
      evidence + ". Judged on log2 of each seed's best tau.",
      {
        "spreads": spreads,
        "best_log2_tau": [v.mean for v in values],
        "per_seed": {s: best[s][0] for s in spreads},
      },  # fmt: skip
      strict=strict,
      noise=reporting.noise_basis(values),
    )
  ]


def _cell(cells, spread, tau, key, scale) -> reporting.Value | None:
  runs = cells.get((spread, tau))
  if not runs:
    return None
  return reporting.measure([scale * r[key] for r in runs.values()])


def write_figure(path: str, cells) -> str:
  spreads = sorted({s for s, _ in cells})
  taus = sorted({t for _, t in cells})
  fig, axes = plt.subplots(1, 3, figsize=(15, 4))
  for i, spread in enumerate(spreads):
    points = [(t, _cell(cells, spread, t, "linear_accuracy", 100.0)) for t in taus]
    points = [(t, v) for t, v in points if v is not None]
    color = plt.cm.viridis(i / max(len(spreads) - 1, 1))
    errors = [0 if math.isnan(v.spread) else v.spread for _, v in points]
    axes[0].errorbar(
      [t for t, _ in points], [v.mean for _, v in points], yerr=errors, marker="o", ms=3,
      capsize=2, color=color, label=f"spread {spread:g}"
    )  # fmt: skip
  axes[0].set_xscale("log")
  axes[0].set_xlabel("tau")
  axes[0].set_ylabel("linear accuracy (%), mean ± sd over seeds")
  axes[0].legend(fontsize=7)
  rows = []
  for ax, (key, label, scale) in zip(axes[1:], FIGURES[1:], strict=True):
    surface = np.full((len(spreads), len(taus)), np.nan)
    for a, s in enumerate(spreads):
      for b, t in enumerate(taus):
        v = _cell(cells, s, t, key, scale)
        if v is not None:
          surface[a, b] = v.mean
          rows.append((key, s, t, v.mean, v.spread))
    image = ax.imshow(surface, aspect="auto", origin="lower", cmap="viridis")
    ax.set_xticks(range(len(taus)), [f"{t:g}" for t in taus])
    ax.set_yticks(range(len(spreads)), [f"{s:g}" for s in spreads])
    ax.set_xlabel("tau")
    ax.set_ylabel("within-class spread")
    ax.set_title(f"{label} (mean over seeds)")
    fig.colorbar(image, ax=ax)
  fig.tight_layout()
  return reporting.save_figure(
    fig, path, header=["figure", "spread", "temperature", "mean", "sd"], rows=rows
  )


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """report.md (a table per figure, the best tau per spread, the claim) and
  semantic_density.png with its CSV."""
  cells = grid(entries)
  spreads = sorted({s for s, _ in cells})
  taus = sorted({t for _, t in cells})
  tables = []
  for key, label, scale in FIGURES:
    fmt = "{:.2f}" if scale == 100.0 else "{:.3f}"
    tables += [f"**{label}**", ""]
    tables += reporting.markdown_table(
      ["spread \\ tau", *(f"{t:g}" for t in taus)],
      [
        [
          f"{s:g}",
          *("" if (v := _cell(cells, s, t, key, scale)) is None else v.text(fmt) for t in taus),
        ]
        for s in spreads
      ],  # fmt: skip
    )
    tables.append("")
  best = best_temperatures(cells)
  tables += ["**best tau per spread** (highest linear accuracy; geometric mean over seeds)", ""]
  tables += reporting.markdown_table(
    ["spread", "best tau", "log2 tau", "each seed's"],
    [
      [f"{s:g}", f"{2**v.mean:.3g}", v.text("{:.2f}"), ", ".join(f"{t:g}" for t in b)]
      for s, (b, v) in sorted(best.items())
    ],  # fmt: skip
  )
  paths = {"figure": os.path.join(workdir, "semantic_density.png")}
  if cells:
    write_figure(paths["figure"], cells)
  groups = reporting.replicas(entries)
  return reporting.write_report(
    workdir,
    "semantic_density",
    title="The best temperature against semantic density (the latent test-bed)",
    intro=f"Dataset `{config.data.name}`, {config.model.encoder}, the contrastive loss, "
    f"layout `{config.loss.layout}`, batch {config.data.batch_size}, "
    f"{config.train.num_epochs} epochs per run. Rows: `data.latent_instance_spread` "
    "(instances around their class centre; smaller = same-class neighbours more "
    "crowded); columns: tau. The prediction follows from Wang & Liu's argument; no "
    "paper reports it.",
    tables=tables,
    claims=claims(cells) if len(best) >= 2 else None,
    figures=[("accuracy against tau per spread; -L_unif and tolerance", "semantic_density.png")],
    paths=paths,
    seeds=reporting.seed_count(groups),
    entries=entries,
  )
