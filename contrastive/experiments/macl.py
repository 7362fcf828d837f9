"""Huang et al. (ICML 2023) MACL: a fixed temperature against MACL's adaptive one.

Command (a sweep of 10 runs):
  python run.py --config=configs/experiments/macl.py:scale=latent,seeds=5 --workdir=DIR
  python run.py --config=configs/experiments/macl.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/macl.py:scale=paper --workdir=DIR

Writes DIR/report.md: linear accuracy, uniformity and tolerance of the contrastive
loss at fixed tau in {0.1, 0.2} and of MACL (tau_0 = 0.1) with each schedule,
the adaptive tau each MACL run ended with (and the range it moved in during
training, from its metrics.jsonl), and the paper's claim "MACL improves on the
fixed-temperature loss" (published for ImageNet-1K only, quoted in the report).

The batch-size axis (the paper's second claim, from its ImageNet-1K table by batch
size: with fewer negatives MACL's gain grows): the fixed runs and MACL linear again
at a half and a quarter of the scale's batch (2N - 2 negatives shrink alike), the
same epochs and learning rate; the gain of MACL linear over the fixed run at its
tau_0 is measured per seed (same initialisation and data order) at each batch.

MACL schedules: `linear`, tau = tau_0 (1 + alpha (A - A_0)) with alpha = 0.5,
A_0 = 0 (the ICML release's public defaults); `exponential`, tau = tau_0 alpha^A
with alpha = 2 (the first release). A is the batch's mean positive similarity.
All runs use SimCLR's 2N-2 in-batch negatives (`loss.layout=cross_view` for the
first release's N-1). `paper`: `recipes.simclr_cifar`. `small`: the quickstart's
ConvN on the embedded `shapes`, 6 epochs per run.
"""

import functools
import os

from matplotlib import pyplot as plt

from contrastive import config as config_lib
from contrastive import experiments
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
# The batch-size axis: these runs again at the scale's batch divided by each divisor.
BATCH_DIVISORS = (2, 4)
BATCH_RUNS = RUNS[:3]


def runs(config) -> tuple[str, ...]:
  """RUNS at the scale's batch, then BATCH_RUNS at each smaller batch."""
  smaller = [config.data.batch_size // d for d in BATCH_DIVISORS]
  return RUNS + tuple(f"{r},data.batch_size={b}" for b in smaller for r in BATCH_RUNS)


def get_config(arg=None):
  return experiments.study_config(
    arg,
    scales={
      "latent": recipes.latent,
      "small": recipes.small,
      "medium": recipes.medium,
      "paper": recipes.simclr_cifar,
    },
    runs=runs,
    report="macl",
  )


def label(loss) -> str:
  """A run's row label from its loss config."""
  if loss["name"] == "macl":
    return (
      f"MACL {loss['macl_schedule']} (tau_0={loss['temperature']:g}, alpha={loss['macl_alpha']:g})"
    )
  return f"fixed tau={loss['temperature']:g}"


def gain_text(value) -> str:
  """A gain in points, signed: "+1.20" with one seed, "+1.20 ± 0.40" with several."""
  return f"{value.mean:+.2f}" + (f" ± {value.spread:.2f}" if value.seeds > 1 else "")


def fixed_label(loss) -> str:
  """The label of the fixed run at a MACL run's tau_0."""
  return label({"name": "contrastive", "temperature": loss["temperature"]})


def _accuracies(entries) -> dict:
  """{(batch, label): {seed: linear accuracy in %}} of the finished runs."""
  found = {}
  for e in entries:
    config = e["config"]
    key = (config["data"]["batch_size"], label(config["loss"]))
    found.setdefault(key, {})[config["seed"]] = 100 * e["results"]["linear_accuracy"]
  return found


@functools.cache
def gain_loss() -> dict:
  """The loss config of the run whose gain the batch-size axis follows (MACL linear)."""
  return config_lib.with_overrides(config_lib.base(), BATCH_RUNS[2]).loss.to_dict()


def gains(entries) -> dict:
  """{batch: `reporting.Value` of MACL linear's gain over the fixed run at its tau_0 (in
  accuracy points), paired by seed} at every batch where both have a seed in common."""
  loss = gain_loss()
  fixed = fixed_label(loss)
  acc = _accuracies(entries)
  found = {}
  for batch in sorted({b for b, _ in acc}):
    ours, base = acc.get((batch, label(loss)), {}), acc.get((batch, fixed), {})
    common = sorted(set(ours) & set(base))
    if common:
      found[batch] = reporting.measure([ours[s] - base[s] for s in common])
  return found


def claims(entries, by_batch=None) -> list[reporting.Claim] | None:
  """Each MACL run against the fixed run at its tau_0 and against the best fixed run at
  the same batch, judged against the noise; with the batch-size axis (`gains`, computed
  here unless given), whether MACL linear's gain grows as the batch shrinks. None until
  there are both."""
  groups = reporting.replicas(entries)
  batch = max(g["config"]["data"]["batch_size"] for g in groups)  # the scale's own
  runs = [g for g in groups if g["config"]["data"]["batch_size"] == batch]
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
        f"{acc.text('{:.2f}')} against {versus} (batch {batch}).",
        {"accuracy": acc.mean, "fixed": None if base is None else base.mean},
        strict=base is not None and acc.mean > base.mean,
        noise=reporting.noise_basis([acc] + ([base] if base else [])),
      ),
      reporting.Claim(
        f"{label(loss)} improves on the best fixed run",
        reporting.difference(best_fixed, acc) == 1,
        f"{acc.text('{:.2f}')} against {best_fixed.text('{:.2f}')} (batch {batch}).",
        {"accuracy": acc.mean, "best_fixed": best_fixed.mean},
        strict=acc.mean > best_fixed.mean,
        noise=reporting.noise_basis([acc, best_fixed]),
      ),
    ]
  by_batch = gains(entries) if by_batch is None else by_batch
  if len(by_batch) > 1:
    run = gain_loss()
    ordered = [by_batch[b] for b in sorted(by_batch, reverse=True)]  # largest batch first
    strict, holds = reporting.trend(ordered, +1)
    found.append(
      reporting.Claim(
        f"With fewer negatives (smaller batches) {label(run)}'s gain over the fixed "
        "temperature at its tau_0 grows",
        holds,
        f"Gain in accuracy points ({label(run)} - {fixed_label(run)}, paired by seed) at batch "
        + ", ".join(f"{b}: {gain_text(by_batch[b])}" for b in sorted(by_batch, reverse=True))
        + ".",
        {"gains": {b: v.mean for b, v in by_batch.items()}},
        strict=strict,
        noise=reporting.noise_basis(ordered),
      )
    )
  return found


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """report.md (each run's accuracy, uniformity, tolerance and final tau at each batch;
  MACL linear's gain by batch; the published ImageNet numbers; the claims) and
  macl_temperature.png (the adaptive tau; the gain against the batch) with its CSV."""
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
    batch = run["config"]["data"]["batch_size"]
    rows.append((label(loss), batch, loss, {"acc": reporting.accuracy(run, scale=100), **figures},
                 tau))  # fmt: skip
  rows.sort(key=lambda row: -row[1])  # the scale's batch first, then the smaller ones
  by_batch = gains(entries)
  paths = {"figure": os.path.join(workdir, "macl_temperature.png")}
  fig, (ax, gain_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
  for name, batch, loss, _, t in rows:
    if batch != config.data.batch_size:
      continue
    if t is not None:
      ax.plot(t[0], t[1], label=name)
    else:
      ax.axhline(loss["temperature"], ls="--", lw=1, color="gray")
  ax.set_xlabel("step")
  ax.set_ylabel("temperature")
  ax.set_title(f"MACL's adaptive tau at batch {config.data.batch_size} (dashed: fixed)",
               fontsize=9)  # fmt: skip
  if any(t is not None for *_, t in rows):
    ax.legend(fontsize=7)
  if by_batch:
    batches = sorted(by_batch)
    gain_ax.errorbar(batches, [by_batch[b].mean for b in batches],
                     yerr=[2 * by_batch[b].se if by_batch[b].seeds > 1 else 0 for b in batches],
                     marker="o", capsize=3)  # fmt: skip
    gain_ax.axhline(0.0, color="gray", lw=1)
    gain_ax.set_xscale("log", base=2)
    gain_ax.set_xticks(batches, [str(b) for b in batches])
  gain_ax.set_xlabel("batch (2N - 2 negatives)")
  gain_ax.set_ylabel("MACL linear - fixed, accuracy points")
  gain_ax.set_title("MACL's gain by batch (bars: 2 standard errors)", fontsize=9)
  reporting.save_figure(
    fig,
    paths["figure"],
    header=["run", "batch", "linear_accuracy", "uniformity", "tolerance", "final_temperature"],
    rows=[
      (
        name,
        batch,
        r["acc"].mean / 100,
        r["uniformity"].mean,
        r["tolerance"].mean,
        "" if t is None else t[1][-1],
      )
      for name, batch, _, r, t in rows
    ],
  )

  def tau_text(loss, t):
    if t is None:
      return f"{loss['temperature']:g}"
    return f"{t[1][-1]:.4f} ({t[1].min():.4f} - {t[1].max():.4f})"

  pub = PUBLISHED
  gain_lines = []
  if by_batch:
    gain_lines = [
      "",
      "MACL linear's gain over the fixed run at its tau_0, in accuracy points, paired by seed:",
      "",
      *reporting.markdown_table(
        ["batch", "gain"], [[b, gain_text(by_batch[b])] for b in sorted(by_batch)]
      ),
    ]
  return reporting.write_report(
    workdir,
    "macl",
    title="Huang et al. (ICML 2023), MACL: adaptive against fixed temperature",
    intro=f"Dataset `{config.data.name}`, {config.model.encoder}, layout "
    f"`{config.loss.layout}`, batch {config.data.batch_size} (and smaller, the batch-size "
    f"axis), {config.train.num_epochs} epochs per run.",
    tables=reporting.markdown_table(
      ["run", "batch", "linear acc (%)", "-L_unif", "tolerance", "tau at the end (range)"],
      [
        [
          name,
          batch,
          r["acc"].text("{:.2f}"),
          r["uniformity"].text(),
          r["tolerance"].text(),
          tau_text(loss, t),
        ]
        for name, batch, loss, r, t in rows
      ],
    )
    + gain_lines
    + [
      "",
      "Published (ImageNet-1K linear top-1 %, batch "
      + " / ".join(str(b) for b in pub["batch"])
      + "): SimCLR "
      + " / ".join(f"{v:g}" for v in pub["simclr"])
      + ", SimCLR + MACL "
      + " / ".join(f"{v:g}" for v in pub["macl"])
      + "; gain "
      + " / ".join(f"{m - f:+.1f}" for f, m in zip(pub["simclr"], pub["macl"], strict=True))
      + ".",
    ],
    claims=claims(entries, by_batch),
    figures=[("adaptive temperature; gain by batch", "macl_temperature.png")],
    paths=paths,
    seeds=reporting.seed_count(reporting.replicas(entries)),
    entries=entries,
  )
