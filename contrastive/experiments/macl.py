"""Huang et al. (ICML 2023) MACL: a fixed temperature against MACL's adaptive one.

Command (a sweep of 4 runs):
  python run.py --config=configs/experiments/macl.py:scale=latent,seeds=5 --workdir=DIR
  python run.py --config=configs/experiments/macl.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/macl.py:scale=paper --workdir=DIR

Writes DIR/report.md: linear accuracy, uniformity and tolerance of the contrastive
loss at fixed tau in {0.1, 0.2} and of MACL (tau_0 = 0.1) with each schedule,
the adaptive tau each MACL run ended with (and the range it moved in during
training, from its metrics.jsonl), and the paper's claim "MACL improves on the
fixed-temperature loss" (published for ImageNet-1K only, quoted in the report).

MACL schedules: `linear`, tau = tau_0 (1 + alpha (A - A_0)) with alpha = 0.5,
A_0 = 0 (the ICML release's public defaults); `exponential`, tau = tau_0 alpha^A
with alpha = 2 (the first release). A is the batch's mean positive similarity.
All runs use SimCLR's 2N-2 in-batch negatives (`loss.layout=cross_view` for the
first release's N-1). `paper`: `recipes.simclr_cifar`. `small`: the quickstart's
ConvN on the embedded `shapes`, 6 epochs per run.
"""

import os

from matplotlib import pyplot as plt

from contrastive import config as config_lib
from contrastive import paths as storage
from contrastive import recipes
from contrastive import reporting
from contrastive import saved

# Huang et al.: ImageNet-1K linear top-1 (%) by batch size, SimCLR and SimCLR + MACL.
PUBLISHED = {
  "batch": (128, 256, 512, 1024, 2048),
  "simclr": (60.6, 61.9, 64.0, 65.3, 66.1),
  "macl": (61.6, 64.3, 65.2, 66.5, 66.9),
}
RUNS = (
  "loss.name=contrastive,loss.temperature=0.1",
  "loss.name=contrastive,loss.temperature=0.2",
  "loss.name=macl,loss.temperature=0.1,loss.macl_schedule=linear,loss.macl_alpha=0.5",
  "loss.name=macl,loss.temperature=0.1,loss.macl_schedule=exponential,loss.macl_alpha=2.0",
)


def get_config(arg=None):
  return config_lib.experiment(
    arg,
    scales={
      "latent": recipes.latent,
      "small": recipes.small,
      "medium": recipes.medium,
      "paper": recipes.simclr_cifar,
    },
    runs=RUNS,
    report="macl",
  )


def label(loss) -> str:
  """A run's row label from its loss config."""
  if loss["name"] == "macl":
    return (
      f"MACL {loss['macl_schedule']} (tau_0={loss['temperature']:g}, alpha={loss['macl_alpha']:g})"
    )
  return f"fixed tau={loss['temperature']:g}"


def claims(entries) -> list[reporting.Claim] | None:
  """Each MACL run against the fixed run at its tau_0 and against the best fixed run,
  judged against the noise; None until there are both."""
  runs = reporting.replicas(entries)
  fixed = {
    run["config"]["loss"]["temperature"]: reporting.accuracy(run, scale=100)
    for run in runs
    if run["config"]["loss"]["name"] != "macl"
  }
  macl = [run for run in runs if run["config"]["loss"]["name"] == "macl"]
  if not fixed or not macl:
    return None
  best_fixed = max(fixed.values(), key=lambda v: v.mean)
  found = []
  for run in macl:
    loss, acc = run["config"]["loss"], reporting.accuracy(run, scale=100)
    base = fixed.get(loss["temperature"])
    versus = (
      f"fixed tau={loss['temperature']:g} {base.text('{:.2f}')}"
      if base is not None
      else "no fixed run at its tau_0"
    )
    found += [
      reporting.Claim(
        f"{label(loss)} improves on the fixed temperature at its tau_0",
        base is not None and reporting.difference(base, acc) == 1,
        f"{acc.text('{:.2f}')} against {versus}.",
        {"accuracy": acc.mean, "fixed": None if base is None else base.mean},
        strict=base is not None and acc.mean > base.mean,
        noise=reporting.noise_basis([acc] + ([base] if base else [])),
      ),
      reporting.Claim(
        f"{label(loss)} improves on the best fixed run",
        reporting.difference(best_fixed, acc) == 1,
        f"{acc.text('{:.2f}')} against {best_fixed.text('{:.2f}')}.",
        {"accuracy": acc.mean, "best_fixed": best_fixed.mean},
        strict=acc.mean > best_fixed.mean,
        noise=reporting.noise_basis([acc, best_fixed]),
      ),
    ]
  return found


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """report.md (each run's accuracy, uniformity, tolerance and final tau; the published
  ImageNet numbers; the claims) and macl_temperature.png with its CSV."""
  rows = []
  for run in reporting.replicas(entries):
    loss = run["config"]["loss"]
    run_dir = os.path.join(workdir, run["name"])
    tau = None
    if loss["name"] == "macl" and storage.exists(storage.path(run_dir, "metrics.jsonl")):
      tau = saved.load(run_dir).series("temperature")  # the first seed's trajectory
    figures = {
      key: reporting.over_seeds(run, lambda r, key=key: r[key])
      for key in ("uniformity", "tolerance")
    }
    rows.append((label(loss), loss, {"acc": reporting.accuracy(run, scale=100), **figures}, tau))
  paths = {"figure": os.path.join(workdir, "macl_temperature.png")}
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name, loss, _, t in rows:
    if t is not None:
      ax.plot(t[0], t[1], label=name)
    else:
      ax.axhline(loss["temperature"], ls="--", lw=1, color="gray")
  ax.set_xlabel("step")
  ax.set_ylabel("temperature")
  ax.set_title("MACL's adaptive tau (dashed: fixed runs)", fontsize=9)
  if any(t is not None for *_, t in rows):
    ax.legend(fontsize=7)
  reporting.save_figure(
    fig,
    paths["figure"],
    header=["run", "linear_accuracy", "uniformity", "tolerance", "final_temperature"],
    rows=[
      (
        name,
        r["acc"].mean / 100,
        r["uniformity"].mean,
        r["tolerance"].mean,
        "" if t is None else t[1][-1],
      )
      for name, _, r, t in rows
    ],
  )

  def tau_text(loss, t):
    if t is None:
      return f"{loss['temperature']:g}"
    return f"{t[1][-1]:.4f} ({t[1].min():.4f} - {t[1].max():.4f})"

  pub = PUBLISHED
  return reporting.write_report(
    workdir,
    "macl",
    title="Huang et al. (ICML 2023), MACL: adaptive against fixed temperature",
    intro=f"Dataset `{config.data.name}`, {config.model.encoder}, layout "
    f"`{config.loss.layout}`, batch {config.data.batch_size}, {config.train.num_epochs} "
    "epochs per run.",
    tables=reporting.markdown_table(
      ["run", "linear acc (%)", "-L_unif", "tolerance", "tau at the end (range)"],
      [
        [
          name,
          r["acc"].text("{:.2f}"),
          r["uniformity"].text(),
          r["tolerance"].text(),
          tau_text(loss, t),
        ]
        for name, loss, r, t in rows
      ],
    )
    + [
      "",
      "Published (ImageNet-1K linear top-1 %, batch "
      + " / ".join(str(b) for b in pub["batch"])
      + "): SimCLR "
      + " / ".join(f"{v:g}" for v in pub["simclr"])
      + ", SimCLR + MACL "
      + " / ".join(f"{v:g}" for v in pub["macl"])
      + ".",
    ],
    claims=claims(entries),
    figures=[("adaptive temperature", "macl_temperature.png")],
    paths=paths,
    seeds=reporting.seed_count(reporting.replicas(entries)),
    entries=entries,
  )
