"""Chen, Luo & Li (NeurIPS 2021) Fig. 1: generalized contrastive losses and head depth,
made fair by construction.

Commands (two stages; `scale=latent,seeds=5`, `medium` or `paper` likewise):
  python run.py --config=configs/experiments/generalized_losses.py:scale=small \
    --workdir=DIR/selection
  python run.py \
    --config=configs/experiments/generalized_losses.py:scale=small,selection=DIR/selection \
    --workdir=DIR

Fair by construction: every run's loss is scaled so that its gradient norm at
initialisation equals NT-Xent's at tau 0.2 (`loss.scale_reference=nt_xent`, the
notebooks' `loss_scaling`, calibrated on the first batch; `build.calibrate_loss_scale`).
The generalized loss's 1/d alignment term makes its gradients about tau/d of
NT-Xent's, so under one SGD learning rate it trained at a fraction of NT-Xent's step
size (a lent H100 measured 41.8-75.5% for decoupled NT-Xent against 99.65% for
NT-Xent, issue 15); the paper's LARS is scale-invariant per layer, and matching the
gradient norm keeps the recipe's tuned SGD for every loss instead of tuning a LARS
learning rate per loss.

Stage 1, selection (15 runs, head depth 2, evaluated on a held-out 20% of the training
set, `data.holdout_fraction=0.2`, never on the test split): each loss's knob on a small
grid, NT-Xent's tau in {0.1, 0.2, 0.5}; decoupled NT-Xent (logsumexp term, tau 0.2)
lambda in {1/4, 1, 4} x 2 tau / d, the value at which its gradient has NT-Xent's
direction (spec 2.1: "lambda plays the role of tau"); the sliced Wasserstein distance
to the Gaussian (not normalised), hypersphere (normalised) and hypercube (not
normalised) priors, lambda in {1, 5, 20}. Writes the validation grid, the chosen
values and the sensitivity figure (generalized_losses_selection.png).

Stage 2, test (`selection=DIR`, 15 runs: 5 losses x head depths 1, 2, 3): each loss at
its chosen value, trained on the whole training set and evaluated on the test split.
Writes the test accuracy per loss and depth, the spread across losses at each depth,
the paper's finding "with a deep projection head, all these losses reach similar
linear accuracy" judged on our numbers, and the selection stage's grid.
`paper`: `recipes.simclr_cifar` (ResNet-18; the paper used ResNet-50). `small`: the
quickstart's ConvN on the embedded `shapes`, 6 epochs per run.
"""

import functools
import math
import os

from matplotlib import pyplot as plt

from contrastive import config as config_lib
from contrastive import experiments
from contrastive import paths as storage
from contrastive import recipes
from contrastive import reporting
from contrastive import sweep

# NT-Xent's temperature in the paper (and the reference of every loss's scale).
NT_XENT_TAU = 0.2
# The fraction of the training set the selection stage holds out.
HOLDOUT = 0.2
# (label, overrides, the knob chosen on the held-out split, its grid or None: the
# decoupled loss's, {1/4, 1, 4} x 2 tau / d, set from the model's d).
LOSSES = (
  ("NT-Xent", "loss.name=contrastive", "loss.temperature", (0.1, 0.2, 0.5)),
  (
    "decoupled NT-Xent",
    f"loss.name=generalized,loss.distribution=logsumexp,loss.temperature={NT_XENT_TAU:g}",
    "loss.weight",
    None,
  ),
  (
    "SWD Gaussian",
    "loss.name=generalized,loss.distribution=swd_gaussian,loss.normalize=False",
    "loss.weight",
    (1.0, 5.0, 20.0),
  ),
  (
    "SWD hypersphere",
    "loss.name=generalized,loss.distribution=swd_hypersphere,loss.normalize=True",
    "loss.weight",
    (1.0, 5.0, 20.0),
  ),
  (
    "SWD hypercube",
    "loss.name=generalized,loss.distribution=swd_hypercube,loss.normalize=False",
    "loss.weight",
    (1.0, 5.0, 20.0),
  ),
)
DECOUPLED_FACTORS = (0.25, 1.0, 4.0)
SELECTION_DEPTH = 2
HEAD_DEPTHS = (1, 2, 3)

# "All these losses reach similar linear accuracy" with a deep head: read as every
# loss within this many points (percent) of each other at the deepest head.
SIMILAR_ACCURACY_POINTS = 5.0


def two_tau_over_d(out_dim: int) -> float:
  """The decoupled loss's lambda at which its gradient has NT-Xent's direction."""
  return 2 * NT_XENT_TAU / out_dim


def grid(out_dim: int):
  """(label, overrides, knob, values) of each loss, the decoupled grid set from d."""
  decoupled = tuple(f * two_tau_over_d(out_dim) for f in DECOUPLED_FACTORS)
  return [(n, o, k, decoupled if v is None else v) for n, o, k, v in LOSSES]


def _knob(run_config, key):
  section, name = key.split(".")
  return run_config[section][name]


def _scale(make, holdout):
  """A scale's recipe with every loss scaled to NT-Xent's gradient norm, and the
  selection stage's held-out split."""
  c = make()
  c.data.holdout_fraction = holdout
  c.loss.update(scale_reference="nt_xent", scale_reference_temperature=NT_XENT_TAU)
  return c


def get_config(arg=None):
  """The selection stage's sweep, or with selection=DIR the test stage's (the values
  chosen in DIR)."""
  selection = dict(config_lib.parse(arg)).get("selection")
  holdout = 0.0 if selection else HOLDOUT
  scales = {
    name: functools.partial(_scale, make, holdout)
    for name, make in (
      ("latent", recipes.latent),
      ("small", recipes.small),
      ("medium", recipes.medium),
      ("paper", recipes.simclr_cifar),
    )  # fmt: skip
  }

  chosen = chosen_values(selection) if selection else None

  def runs(config, selection=None):  # d: the scale's, after any override
    if chosen is None:
      return [
        f"{o},{k}={v:g},model.head_depth={SELECTION_DEPTH}"
        for _, o, k, values in grid(config.model.out_dim)
        for v in values
      ]
    return [  # the deepest head first: the finding's depth, should a sweep stop early
      f"{o},{k}={chosen[n][0]:g},model.head_depth={depth}"
      for depth in sorted(HEAD_DEPTHS, reverse=True)
      for n, o, k, _ in grid(config.model.out_dim)
    ]

  c = experiments.study_config(
    arg, scales=scales, runs=runs, report="generalized_losses", own=("selection",)
  )
  if selection:
    c.sweep.inputs = (selection,)
  return c


def selection_table(entries):
  """{label: [(value, validation accuracy % over seeds, loss scale)]} of a selection
  sweep's runs, in grid order."""
  table = {}
  for run in reporting.replicas(entries):
    loss = run["config"]["loss"]
    key = next(k for n, _, k, _ in LOSSES if n == loss_label(loss))
    scale = run["runs"][0].get("loss_scale", 1.0)
    table.setdefault(loss_label(loss), []).append(
      (_knob(run["config"], key), reporting.accuracy(run, scale=100), scale)
    )
  return {n: sorted(table[n], key=lambda r: r[0]) for n, *_ in LOSSES if n in table}


def chosen_values(selection: str) -> dict:
  """{label: (chosen value, its validation accuracy)}: each loss's best run of the
  selection sweep in `selection`; one ConfigError line if it is missing or unfinished."""
  try:
    _, entries = sweep.read(selection)
  except (FileNotFoundError, ValueError):
    raise config_lib.ConfigError(
      f"selection={selection} holds no finished selection sweep (sweep.json); run the "
      "selection stage there first: python run.py --config=configs/experiments/"
      f"generalized_losses.py:scale=SCALE --workdir={selection}"
    ) from None
  table = selection_table(entries)
  missing = [n for n, *_ in LOSSES if n not in table]
  if missing:
    raise config_lib.ConfigError(
      f"The selection sweep in {selection} has no finished run of {', '.join(missing)}; "
      "rerun its command to finish it."
    )
  return {n: max(((v, a) for v, a, _ in rows), key=lambda r: r[1].mean) for n, rows in
          table.items()}  # fmt: skip


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
  labels = [name for name, *_ in LOSSES if name in acc]
  depths = sorted({d for per in acc.values() for d in per})
  return labels, depths, acc


def _optimiser(config) -> str:
  """The optimiser every run shares, as the reports state it."""
  o = config.optimizer
  return f"{o.name.upper()} at learning rate {o.learning_rate:g} ({o.schedule})"


def is_selection(entries) -> bool:
  """Whether `entries` are the selection stage's (evaluated on a held-out split)."""
  return any(e["config"]["data"].get("holdout_fraction", 0) > 0 for e in entries)


def claims(entries) -> list[reporting.Claim] | None:
  """The selection stage: "lambda plays the role of tau"; the test stage: "with a deep
  head all these losses reach similar accuracy". None until the stage is complete."""
  if is_selection(entries):
    return selection_claims(entries)
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


def selection_claims(entries) -> list[reporting.Claim] | None:
  """ "lambda plays the role of tau": the decoupled loss's best lambda on the held-out
  split is the grid's 2 tau / d (beaten by no other by more than the noise)."""
  table = selection_table(entries)
  rows = table.get("decoupled NT-Xent", [])
  if len(table) < len(LOSSES) or len(rows) < len(DECOUPLED_FACTORS):
    return None
  target = two_tau_over_d(entries[0]["config"]["model"]["out_dim"])
  best = max(rows, key=lambda r: r[1].mean)
  at = min(rows, key=lambda r: abs(math.log(r[0] / target)))
  return [
    reporting.Claim(
      f"lambda plays the role of tau: the decoupled loss's best lambda is 2 tau / d = "
      f"{target:.4g} (tau {NT_XENT_TAU:g})",
      reporting.difference(at[1], best[1]) != 1,
      "Validation accuracy by lambda: "
      + ", ".join(f"{v:.4g}: {a.text('{:.2f}')}" for v, a, _ in rows)
      + f"; best {best[0]:.4g}.",
      {"best": best[0], "two_tau_over_d": target},
      strict=best is at,
      noise=reporting.noise_basis(a for _, a, _ in rows),
    )
  ]


def _selection_lines(table, chosen=None) -> list[str]:
  """The validation grid as markdown: each loss's knob, its values' accuracy (and the
  loss scale the calibration chose), the chosen value."""
  width = max(len(rows) for rows in table.values())
  body = []
  for name, rows in table.items():
    key = next(k for n, _, k, _ in LOSSES if n == name)
    best = max(rows, key=lambda r: r[1].mean)[0] if chosen is None else chosen[name][0]
    cells = [f"{v:.4g}: {a.text('{:.2f}')} (x {scale:.3g})" for v, a, scale in rows]
    body.append([name, key, *cells, *[""] * (width - len(rows)), f"{best:.4g}"])
  return reporting.markdown_table(
    [
      "loss",
      "chosen knob",
      *(f"value {i + 1}: val acc % (loss scale)" for i in range(width)),
      "chosen",
    ],  # fmt: skip
    body,
  )


def _selection_report(workdir, entries, config) -> reporting.Report:
  table = selection_table(entries)
  paths = {"figure": os.path.join(workdir, "generalized_losses_selection.png")}
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
  for name, rows in table.items():
    ax = left if name == "NT-Xent" else right
    ax.plot([v for v, *_ in rows], [a.mean for _, a, _ in rows], "o-", label=name)
  target = two_tau_over_d(config.model.out_dim)
  right.axvline(target, ls=":", color="gray", lw=1)
  left.set_xlabel("NT-Xent tau")
  right.set_xlabel("lambda (dotted: 2 tau / d)")
  for ax in (left, right):
    ax.set_xscale("log")
    ax.set_ylabel("held-out linear accuracy (%)")
    ax.legend(fontsize=7)
  reporting.save_figure(
    fig,
    paths["figure"],
    header=["loss", "value", "validation_accuracy_percent", "spread", "seeds", "loss_scale"],
    rows=[(n, v, a.mean, a.spread, a.seeds, sc) for n, rows in table.items() for v, a, sc in rows],
  )
  return reporting.write_report(
    workdir,
    "generalized_losses",
    title="Chen, Luo & Li (NeurIPS 2021), Fig. 1: selection on a held-out split",
    intro=f"Dataset `{config.data.name}` (the last {config.data.holdout_fraction:.0%} of the "
    f"training set held out and evaluated on; the test split unused), {config.model.encoder}, "
    f"head depth {SELECTION_DEPTH}, d = {config.model.out_dim}, batch "
    f"{config.data.batch_size}, {config.train.num_epochs} epochs per run, "
    f"{_optimiser(config)} for every loss, each scaled to NT-Xent's (tau {NT_XENT_TAU:g}) "
    "gradient norm at initialisation. The test "
    "stage (`selection=` this directory) trains each loss at its chosen value.",
    tables=_selection_lines(table),
    claims=claims(entries),
    figures=[("held-out accuracy against each loss's knob", paths["figure"].rsplit("/", 1)[1])],
    paths=paths,
    seeds=reporting.seed_count(reporting.replicas(entries)),
    entries=entries,
  )


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """The selection stage's report (the validation grid, the chosen values, the
  sensitivity figure), or the test stage's: accuracy by loss and head depth, the claim,
  generalized_losses.png with its CSV, and the selection grid it used."""
  if is_selection(entries):
    return _selection_report(workdir, entries, config)
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
  spreads = {d: reporting.value_range([acc[n][d] for n in labels if d in acc[n]]) for d in depths}
  tables = reporting.markdown_table(
    ["loss", *(f"head depth {d}" for d in depths)],
    [
      [name, *(acc[name][d].text("{:.2f}") if d in acc[name] else "-" for d in depths)]
      for name in labels
    ]
    + [["spread (max - min)", *(f"{spreads[d][0]:.2f}" for d in depths)]],
  )
  inputs = [
    d for d in config.sweep.get("inputs", ()) if storage.exists(storage.path(d, "sweep.json"))
  ]
  if inputs:
    tables += ["", f"Chosen on the held-out split (`{inputs[0]}`):", ""]
    tables += _selection_lines(selection_table(sweep.read(inputs[0])[1]))
  return reporting.write_report(
    workdir,
    "generalized_losses",
    title="Chen, Luo & Li (NeurIPS 2021), Fig. 1: generalized contrastive losses",
    intro=f"Dataset `{config.data.name}`, {config.model.encoder}, batch "
    f"{config.data.batch_size}, {config.train.num_epochs} epochs per run. Linear accuracy "
    f"(%) of a probe on frozen encoder features, on the test split. {_optimiser(config)} for "
    f"every loss, each scaled to NT-Xent's (tau {NT_XENT_TAU:g}) gradient norm at "
    "initialisation; each loss's tau or "
    "lambda chosen on a held-out split of the training set (the selection stage). The "
    "paper gives this figure as bars without a table of numbers.",
    tables=tables,
    claims=claims(entries),
    figures=[("accuracy by loss and head depth", "generalized_losses.png")],
    paths=paths,
    seeds=reporting.seed_count(reporting.replicas(entries)),
    entries=entries,
  )
