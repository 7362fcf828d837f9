"""Chen, Luo & Li (NeurIPS 2021) Fig. 1: generalized contrastive losses and head depth.

Command (a sweep of 15 runs: 5 losses x projection heads of depth 1, 2, 3):
  python run.py --config=configs/experiments/generalized_losses.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/generalized_losses.py:scale=paper --workdir=DIR

Writes DIR/report.md: linear accuracy of each loss at each head depth, and the
paper's finding "with a deep projection head, all these losses reach similar
linear accuracy" checked on our numbers (spread across losses at the deepest
head, against the shallowest), with generalized_losses.png. The paper gives this
figure as bars without a table of numbers.

Losses: NT-Xent (tau 0.2); decoupled NT-Xent (the generalized loss with the
logsumexp distribution term, tau 1.0, lambda 0.1); the sliced Wasserstein distance
to three priors, lambda 5: Gaussian (features not normalised: with normalisation
the official code normalises the prior too, which makes it the hypersphere),
uniform hypersphere (normalised), uniform hypercube (not normalised). The tau and
lambda values of the last four come from a third-party reproduction (spec 2.1).
`paper`: `recipes.simclr_cifar` (ResNet-18; the paper used ResNet-50). `small`:
the quickstart's ConvN on the embedded `shapes`, 6 epochs per run.
"""

import os

from matplotlib import pyplot as plt

from contrastive import config as config_lib
from contrastive import recipes
from contrastive import reporting

# (label, overrides) of each loss; the head depth is the sweep's other axis.
LOSSES = (
  ("NT-Xent", "loss.name=contrastive,loss.temperature=0.2"),
  (
    "decoupled NT-Xent",
    "loss.name=generalized,loss.distribution=logsumexp,loss.temperature=1.0,loss.weight=0.1",
  ),
  (
    "SWD Gaussian",
    "loss.name=generalized,loss.distribution=swd_gaussian,loss.weight=5.0,loss.normalize=False",
  ),
  (
    "SWD hypersphere",
    "loss.name=generalized,loss.distribution=swd_hypersphere,loss.weight=5.0,loss.normalize=True",
  ),
  (
    "SWD hypercube",
    "loss.name=generalized,loss.distribution=swd_hypercube,loss.weight=5.0,loss.normalize=False",
  ),
)
HEAD_DEPTHS = (1, 2, 3)

# "All these losses reach similar linear accuracy" with a deep head: read as every
# loss within this many points (percent) of each other at the deepest head.
SIMILAR_ACCURACY_POINTS = 5.0


def get_config(arg=None):
  return config_lib.experiment(
    arg,
    scales={"small": recipes.small, "medium": recipes.medium, "paper": recipes.simclr_cifar},
    runs=tuple(f"{o},model.head_depth={depth}" for _, o in LOSSES for depth in HEAD_DEPTHS),
    report="generalized_losses",
  )


def loss_label(loss_config) -> str:
  """The row label of a run's loss config (a dict or ConfigDict)."""
  if loss_config["name"] == "contrastive":
    return "NT-Xent"
  if loss_config["distribution"] == "logsumexp":
    return "decoupled NT-Xent"
  return "SWD " + loss_config["distribution"].removeprefix("swd_").replace("gaussian", "Gaussian")


def accuracy_table(entries) -> tuple[list[str], list[int], dict[str, dict[int, reporting.Value]]]:
  """(loss labels, head depths, {label: {depth: linear accuracy % over seeds}})."""
  acc: dict[str, dict[int, reporting.Value]] = {}
  for run in reporting.replicas(entries):
    label = loss_label(run["config"]["loss"])
    acc.setdefault(label, {})[run["config"]["model"]["head_depth"]] = reporting.accuracy(
      run, scale=100
    )
  labels = [name for name, _ in LOSSES if name in acc]
  depths = sorted({d for per in acc.values() for d in per})
  return labels, depths, acc


def claims(entries) -> list[reporting.Claim] | None:
  """ "With a deep projection head all these losses reach similar linear accuracy": the
  spread (max - min across losses) at the deepest head is at most
  SIMILAR_ACCURACY_POINTS and no larger than at the shallowest. Against the noise, a
  spread counts as too large only where it exceeds those bounds by more than it."""
  labels, depths, acc = accuracy_table(entries)
  if len(depths) < 2 or len(labels) < 2 or any(set(acc[n]) != set(depths) for n in labels):
    return None

  spreads = {d: reporting.value_range([acc[n][d] for n in labels]) for d in depths}
  deep, shallow = depths[-1], depths[0]
  (deep_spread, deep_ses), (shallow_spread, shallow_ses) = spreads[deep], spreads[shallow]
  strict = deep_spread <= SIMILAR_ACCURACY_POINTS and deep_spread <= shallow_spread
  noisy = not reporting.exceeds(
    deep_spread - SIMILAR_ACCURACY_POINTS, deep_ses
  ) and not reporting.exceeds(deep_spread - shallow_spread, deep_ses + shallow_ses)
  return [
    reporting.Claim(
      f"With the deepest head (depth {deep}) all losses reach similar linear accuracy "
      f"(within {SIMILAR_ACCURACY_POINTS:g} points, and closer than with depth {shallow})",
      noisy,
      "Spread (max - min across losses) by depth: "
      + ", ".join(f"{d}: {spreads[d][0]:.2f}" for d in depths)
      + ".",
      {"spread": {d: spreads[d][0] for d in depths}},
      strict=strict,
      noise=reporting.noise_basis(v for per in acc.values() for v in per.values()),
    )
  ]


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """report.md (accuracy by loss and head depth, the claim) and
  generalized_losses.png with its CSV."""
  labels, depths, acc = accuracy_table(entries)
  paths = {"figure": os.path.join(workdir, "generalized_losses.png")}
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name in labels:
    xs = [d for d in depths if d in acc[name]]
    ax.plot(xs, [acc[name][d].mean for d in xs], "o-", label=name)
  ax.set_xticks(depths)
  ax.set_xlabel("projection head depth")
  ax.set_ylabel("linear accuracy (%)")
  ax.legend(fontsize=7)
  reporting.save_figure(
    fig,
    paths["figure"],
    header=["loss", "head_depth", "linear_accuracy_percent", "spread", "seeds"],
    rows=[
      (name, d, acc[name][d].mean, acc[name][d].spread, acc[name][d].seeds)
      for name in labels
      for d in depths
      if d in acc[name]
    ],
  )
  return reporting.write_report(
    workdir,
    "generalized_losses",
    title="Chen, Luo & Li (NeurIPS 2021), Fig. 1: generalized contrastive losses",
    intro=f"Dataset `{config.data.name}`, {config.model.encoder}, batch "
    f"{config.data.batch_size}, {config.train.num_epochs} epochs per run. Linear accuracy "
    "(%) of a probe on frozen encoder features. The paper gives this figure as bars "
    "without a table of numbers.",
    tables=reporting.markdown_table(
      ["loss", *(f"head depth {d}" for d in depths)],
      [
        [name, *(acc[name][d].text("{:.2f}") if d in acc[name] else "-" for d in depths)]
        for name in labels
      ],
    ),
    claims=claims(entries),
    figures=[("accuracy by loss and head depth", "generalized_losses.png")],
    paths=paths,
    seeds=reporting.seed_count(reporting.replicas(entries)),
    entries=entries,
  )
