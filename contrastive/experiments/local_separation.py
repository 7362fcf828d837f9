"""Wang & Liu (CVPR 2021) Fig. 8: the positive and the 10 nearest negatives across tau.

Command (a sweep of 6 runs):
  python run.py --config=configs/experiments/local_separation.py:scale=latent,seeds=5 --workdir=DIR
  python run.py --config=configs/experiments/local_separation.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/local_separation.py:scale=paper --workdir=DIR

Writes DIR/report.md: each run's mean similarity to the positive and to its 10
nearest negatives on the test images, the claim "smaller tau gives a larger gap
between the positive and the nearest negative" checked on our numbers,
similarity_profile.png and embedding.png (2-D test embeddings coloured by label).
The paper gives this figure without a table of numbers.

Grid: the contrastive loss at tau in {0.07, 0.2, 0.3, 0.5, 0.7, 1.0}
(`loss=hard_contrastive` for the hard loss). `paper`: `recipes.wang_liu` (ResNet-18,
memory bank, 200 epochs). `small`: Table 1's small settings (embedded `shapes`,
the quickstart's ConvN, in-batch negatives, 6 epochs per run).
"""

import os

from matplotlib import pyplot as plt

from contrastive import config as config_lib
from contrastive import experiments
from contrastive import paths as storage
from contrastive import recipes
from contrastive import reporting
from contrastive import saved
from contrastive.experiments import wang_liu_table1


def runs(config, loss: str = "contrastive") -> tuple[str, ...]:
  return config_lib.grid(loss__name=(loss,), loss__temperature=wang_liu_table1.TEMPERATURES)


def get_config(arg=None):
  return experiments.study_config(
    arg,
    scales={
      "latent": wang_liu_table1.latent,
      "small": wang_liu_table1.small,
      "medium": wang_liu_table1.medium,
      "paper": recipes.wang_liu,
    },
    runs=runs,
    report="local_separation",
    own=("loss",),
  )


def profiles(entries) -> list[tuple[str, float, list[float], dict]]:
  """(loss, tau, mean [pos, n1, ..., nk] over seeds, `replicas` group) of each run,
  by loss then tau."""
  rows = []
  for run in reporting.replicas(entries):
    per_seed = [r["local_separation"] for r in run["runs"]]
    mean = [sum(column) / len(column) for column in zip(*per_seed, strict=True)]
    loss = run["config"]["loss"]
    rows.append((loss["name"], float(loss["temperature"]), mean, run))
  return sorted(rows, key=lambda r: (r[0], r[1]))


def _gap(results) -> float:
  profile = results["local_separation"]
  return profile[0] - profile[1]


def claims(entries) -> list[reporting.Claim] | None:
  """Per loss with two or more tau: the gap pos - n1 falls as tau grows."""
  rows = profiles(entries)
  found = []
  for name in sorted({r[0] for r in rows}):
    mine = [r for r in rows if r[0] == name]
    if len(mine) < 2:
      continue
    gaps = [reporting.over_seeds(run, _gap) for *_, run in mine]
    taus = [t for _, t, _, _ in mine]
    strict, noisy = reporting.trend(gaps, -1)
    found.append(
      reporting.Claim(
        f"`{name}`: smaller tau gives a larger gap between the positive and the nearest "
        "negative (the gap falls as tau grows)",
        noisy,
        "Gap at tau "
        + ", ".join(f"{t:g}: {g.text()}" for t, g in zip(taus, gaps, strict=True))
        + ".",
        {"temperatures": taus, "gaps": [g.mean for g in gaps]},
        strict=strict,
        noise=reporting.noise_basis(gaps),
      )
    )
  return found or None


def write_embedding_figure(path: str, runs, *, max_examples: int = 1000) -> str:
  """A 2-D embedding of each run's test features, coloured by label: one panel per run.

  Each run's model is rebuilt from its checkpoint (`saved.test_features`); the
  panel is the first two principal components of its L2-normalised encoder
  features on the first `max_examples` test images. The plotted coordinates go to
  `path` with .csv for .png.

  Args:
    path: the PNG to write.
    runs: (title, `saved.Run`) pairs, each with its checkpoints (`saved.has_model`).
    max_examples: test images per panel.
  """
  runs = list(runs)
  cols = min(len(runs), 4)
  rows = -(-len(runs) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
  table = []
  for ax, (title, run) in zip(axes.flat, runs, strict=False):
    feats, _, labels = saved.test_features(run, max_examples=max_examples)
    xy = saved.pca_2d(feats)
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
  return reporting.save_figure(
    fig, path, header=["run", "index", "label", "pc1", "pc2"], rows=table, dpi=120
  )


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """report.md (the profile table, the claim per loss), similarity_profile.png and
  embedding.png, each with its CSV."""
  rows = profiles(entries)
  k = len(rows[0][2]) - 1 if rows else 10
  header = ["pos"] + [f"n{i}" for i in range(1, k + 1)]
  paths = {
    "figure": os.path.join(workdir, "similarity_profile.png"),
    "embedding": os.path.join(workdir, "embedding.png"),
  }
  names = sorted({n for n, *_ in rows})
  fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5 * max(len(names), 1), 3.5))
  for ax, name in zip(fig.axes, names, strict=False):
    mine = [r for r in rows if r[0] == name]
    for i, (_, t, profile, _) in enumerate(mine):
      color = plt.cm.viridis(i / max(len(mine) - 1, 1))
      ax.plot(range(k + 1), profile, "o-", ms=3, color=color, label=f"tau={t:g}")
    ax.set_xticks(range(k + 1), header, fontsize=7)
    ax.set_ylabel("cosine similarity")
    ax.set_title(name)
    ax.legend(fontsize=7)
  reporting.save_figure(
    fig,
    paths["figure"],
    header=["loss", "temperature", *header],
    rows=[(n, t, *p) for n, t, p, _ in rows],
  )
  panels = [(f"{n} tau={t:g}", saved.load(os.path.join(workdir, run["name"])))
            for n, t, _, run in rows]  # fmt: skip
  rebuildable = all(saved.has_model(r) for _, r in panels)
  if panels and rebuildable:
    write_embedding_figure(paths["embedding"], panels)
  drawn = storage.exists(paths["embedding"])
  notes = []
  if not rebuildable:  # runs kept without their checkpoints (results/): not redrawn
    del paths["embedding"]
    notes.append(
      "The 2-D embeddings need the runs' checkpoints, which are not kept here"
      + (": the figure below was drawn when they were." if drawn else "; no figure.")
    )
  figures = [("similarity profile", "similarity_profile.png")]
  if drawn:
    figures.append(("2-D test embeddings", "embedding.png"))
  return reporting.write_report(
    workdir,
    "local_separation",
    title="Wang & Liu (CVPR 2021), Fig. 8: local separation across tau",
    intro=f"Dataset `{config.data.name}`, {config.model.encoder}, layout "
    f"`{config.loss.layout}`, batch {config.data.batch_size}, {config.train.num_epochs} "
    f"epochs per run. Every test image is an anchor: its first augmented view's "
    f"projection against the second views of all test images. pos: the similarity to "
    f"its own second view; n1..n{k}: the {k} largest similarities to the second views "
    f"of the other test images, in decreasing order; each averaged over anchors. The "
    "paper gives this figure without a table of numbers.",
    tables=reporting.markdown_table(
      ["loss", "tau", *header, "pos - n1"],
      [[n, f"{t:g}", *(f"{v:.3f}" for v in p), f"{p[0] - p[1]:.3f}"] for n, t, p, _ in rows],
    ),
    claims=claims(entries),
    notes=notes,
    figures=figures,
    paths=paths,
    seeds=reporting.seed_count(reporting.replicas(entries)),
    entries=entries,
  )
