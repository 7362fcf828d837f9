"""Ways of choosing the temperature, compared on one footing: a fixed grid, Kukleva et
al.'s cosine schedule, MACL's adaptive tau, a learned global tau and iSogCLR's learned
per-sample tau.

Command (a sweep of 7 runs; `seeds=N` repeats each):
  python run.py --config=configs/experiments/temperature_choice.py:scale=latent,seeds=5 \\
    --workdir=DIR
  python run.py --config=configs/experiments/temperature_choice.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/temperature_choice.py:scale=medium --workdir=DIR

Writes DIR/report.md: per way, linear and kNN accuracy, uniformity, tolerance, the
entropy of the relative penalty at the end of training, and the temperature it ended
with (a per-sample tau's distribution); temperature_choice.png (tau and the penalty
entropy over training, from each run's metrics.jsonl) with its CSV; and whether each
adaptive way reaches the best fixed tau of the grid. Every run shares the data, model,
optimiser, budget and seed of its scale's recipe (`recipes.small`: the quickstart's
ConvN on `shapes`, 6 epochs; `recipes.medium`: ResNet-18 on `objects`, 15 epochs;
`paper`: SimCLR's CIFAR-10 recipe, `recipes.simclr_cifar`, the setting the three
methods' papers report on CIFAR).

The ways (`RUNS`): fixed tau in {0.1, 0.2, 0.5}; cosine (Kukleva et al., ICLR 2023)
between their tau_min = 0.1 and tau_max = 1.0, with three half periods over the run
(their t_max of 200 epochs is for runs of hundreds of epochs; here tau falls, rises
and falls again, ending at tau_min); MACL (Huang et al., ICML 2023) linear, tau_0 =
0.1, alpha = 0.5; a learned global tau (CLIP's log parameterisation, from 0.2, Adam
1e-3, range [0.1, 1]); per-sample tau (Qiu et al., ICML 2023, iSogCLR's rule and
unimodal defaults: from 0.1, range [0.05, 1], rho 0.4, gamma 0.8, eta 0.03).
"Best fixed tau" is chosen on the test split: an optimistic baseline for the others.
"""

import os

from matplotlib import pyplot as plt
import numpy as np

from contrastive import experiments
from contrastive import paths as storage
from contrastive import recipes
from contrastive import reporting
from contrastive import saved

FIXED = (0.1, 0.2, 0.5)
# Half periods of the cosine schedule per run (tau_max -> tau_min -> tau_max -> tau_min).
COSINE_HALF_PERIODS = 3
RUNS = (
  *(f"loss.temperature={t:g}" for t in FIXED),
  "loss.temperature_schedule=cosine,loss.temperature_half_period_epochs={half}",
  "loss.name=macl,loss.temperature=0.1,loss.macl_schedule=linear,loss.macl_alpha=0.5",
  "loss.temperature_learned=global,loss.temperature=0.2",
  "loss.temperature_learned=per_sample,loss.temperature=0.1,loss.temperature_min=0.05",
)


def get_config(arg=None):
  c = experiments.study_config(
    arg,
    scales={
      "latent": recipes.latent,
      "small": recipes.small,
      "medium": recipes.medium,
      "paper": recipes.simclr_cifar,
    },
    runs=RUNS,
    report="temperature_choice",
  )
  half = c.train.num_epochs / COSINE_HALF_PERIODS  # after `epochs=` overrides
  c.sweep.runs = tuple(r.replace("{half}", f"{half:g}") for r in c.sweep.runs)
  return c


def way(loss) -> str:
  """The way a run chooses tau, as the report names it."""
  if loss["name"] == "macl":
    return f"MACL {loss['macl_schedule']} (tau_0={loss['temperature']:g})"
  if loss.get("temperature_schedule", "constant") == "cosine":
    return f"cosine {loss['temperature_min']:g}..{loss['temperature_max']:g}"
  learned = loss.get("temperature_learned", "none")
  if learned == "global":
    return f"learned global (from {loss['temperature']:g})"
  if learned == "per_sample":
    return f"learned per sample (from {loss['temperature']:g})"
  return f"fixed tau={loss['temperature']:g}"


def is_fixed(loss) -> bool:
  return way(loss).startswith("fixed")


def claims(entries) -> list[reporting.Claim] | None:
  """Each adaptive way against the best fixed tau of the grid (chosen on the test
  split); None until both kinds have finished."""
  runs = reporting.replicas(entries)
  fixed = [r for r in runs if is_fixed(r["config"]["loss"])]
  adaptive = [r for r in runs if not is_fixed(r["config"]["loss"])]
  if not fixed or not adaptive:
    return None
  best = max(fixed, key=lambda r: reporting.accuracy(r, scale=100).mean)
  best_acc, best_name = reporting.accuracy(best, scale=100), way(best["config"]["loss"])
  found = []
  for run in adaptive:
    acc = reporting.accuracy(run, scale=100)
    found.append(
      reporting.Claim(
        f"{way(run['config']['loss'])} reaches the best fixed tau's linear accuracy",
        reporting.difference(best_acc, acc) != -1,
        f"{acc.text('{:.2f}')} against {best_name} {best_acc.text('{:.2f}')}.",
        {"accuracy": acc.mean, "best_fixed": best_acc.mean},
        strict=acc.mean >= best_acc.mean,
        noise=reporting.noise_basis([acc, best_acc]),
      )
    )
  return found


def _series(run_dir: str, key: str):
  """(steps, values) of `key` in a run's metrics.jsonl, or None."""
  if not storage.exists(storage.path(run_dir, "metrics.jsonl")):
    return None
  steps, values = saved.load(run_dir).series(key)
  keep = np.isfinite(values)
  return (steps[keep], values[keep]) if keep.any() else None


def final_temperature(run: dict, run_dir: str) -> str:
  """The temperature a run ended with, as the report prints it (a learned per-sample
  one's distribution; MACL's last logged tau and its range over training)."""
  results, loss = run["runs"][0], run["config"]["loss"]
  if "sample_temperature" in results:
    t = results["sample_temperature"]
    spread = f"p10-p90 {t['p10']:.3f}-{t['p90']:.3f}, range {t['min']:.3f}-{t['max']:.3f}"
    return f"mean {t['mean']:.3f} ({spread})"
  if "learned_temperature" in results:
    return f"{results['learned_temperature']:.4f}"
  tau = _series(run_dir, "temperature")
  if tau is None or is_fixed(loss):
    return f"{loss['temperature']:g}"
  return f"{tau[1][-1]:.4f} ({tau[1].min():.4f} - {tau[1].max():.4f})"


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """report.md (the table of every way, the claims) and temperature_choice.png (tau
  and the relative penalty's entropy over training) with its CSV."""
  rows = []
  for run in reporting.replicas(entries):
    loss = run["config"]["loss"]
    run_dir = os.path.join(workdir, run["name"])
    figures = {
      "acc": reporting.accuracy(run, scale=100),
      "knn": reporting.accuracy(run, "knn_accuracy", scale=100),
      **{k: reporting.over_seeds(run, lambda r, k=k: r[k]) for k in ("uniformity", "tolerance")},
    }
    tau_key = "sample_temperature_mean" if "sample_temperature" in run["runs"][0] else "temperature"
    curves = {"tau": _series(run_dir, tau_key), "entropy": _series(run_dir, "penalty_entropy")}
    rows.append((way(loss), figures, curves, final_temperature(run, run_dir)))
  paths = {"figure": os.path.join(workdir, "temperature_choice.png")}
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for name, _, curves, _ in rows:
    for ax, key in zip(axes, ("tau", "entropy"), strict=True):
      if curves[key] is not None:
        ax.plot(*curves[key], label=name, ls="--" if name.startswith("fixed") else "-")
  axes[0].set_ylabel("temperature (per sample: the mean)")
  axes[1].set_ylabel("entropy of the relative penalty (nats)")
  for ax in axes:
    ax.set_xlabel("step")
  if any(c["tau"] is not None for _, _, c, _ in rows):
    axes[0].legend(fontsize=7)
  reporting.save_figure(
    fig,
    paths["figure"],
    header=[
      "way",
      "linear_accuracy",
      "knn_accuracy",
      "uniformity",
      "tolerance",
      "final_penalty_entropy",
      "final_temperature",
    ],  # fmt: skip
    rows=[
      (
        name,
        f["acc"].mean / 100,
        f["knn"].mean / 100,
        f["uniformity"].mean,
        f["tolerance"].mean,
        "" if c["entropy"] is None else c["entropy"][1][-1],
        tau,
      )
      for name, f, c, tau in rows
    ],
  )
  return reporting.write_report(
    workdir,
    "temperature_choice",
    title="Ways of choosing the temperature, on one footing",
    intro=f"Dataset `{config.data.name}`, {config.model.encoder}, batch "
    f"{config.data.batch_size}, {config.train.num_epochs} epochs per run, the same seed, "
    "data and optimiser for every way. The best fixed tau is chosen on the test split "
    "(an optimistic baseline).",
    tables=reporting.markdown_table(
      [
        "way",
        "linear acc (%)",
        "kNN acc (%)",
        "-L_unif",
        "tolerance",
        "penalty entropy",
        "tau at the end",
      ],  # fmt: skip
      [
        [
          name,
          f["acc"].text("{:.2f}"),
          f["knn"].text("{:.2f}"),
          f["uniformity"].text(),
          f["tolerance"].text(),
          "" if c["entropy"] is None else f"{c['entropy'][1][-1]:.3f}",
          tau,
        ]
        for name, f, c, tau in rows
      ],
    ),
    claims=claims(entries),
    figures=[("temperature and penalty entropy over training", "temperature_choice.png")],
    paths=paths,
    seeds=reporting.seed_count(reporting.replicas(entries)),
    entries=entries,
  )
