"""Chen, Luo & Li (NeurIPS 2021) digits on images: the number of distinct digits k.

Command (a sweep of 6 runs, k in {1, 4, 16, 64, 256, 1024}):
  python run.py --config=configs/experiments/digits_on_images.py:scale=latent,seeds=5 --workdir=DIR
  python run.py --config=configs/experiments/digits_on_images.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/digits_on_images.py:scale=paper,dataset=stl10 \\
    --workdir=DIR

Each image gets one of the first k training digits of the embedded `digits`
(MNIST-framed), pasted at one of 9 grid cells by pixel-wise max, fixed per image
(`suppression.digits_on_images`). Writes DIR/report.md: linear accuracy on the
base labels and on the pasted digit against k, and the paper's claim "as k grows
the digit competes with the object: accuracy on the base labels drops while digit
accuracy rises", with digits_on_images.png. The paper shows this as a figure
without a table of numbers.

`small`: the quickstart's ConvN on the embedded 32x32 `shapes`, digits resized
to 16 px, 6 epochs per run. `paper`: `recipes.simclr_cifar` on `dataset=` (default
stl10; the notebook used tf_flowers, which is not among our sources; STL-10's
96x96 images take the 28 px digits unresized). Digits on images runs on one host.
"""

import os

from matplotlib import pyplot as plt

from contrastive import config as config_lib
from contrastive import experiments
from contrastive import recipes
from contrastive import reporting

POOL_SIZES = (1, 4, 16, 64, 256, 1024)


def small():
  c = recipes.small()
  c.data.digits_size = 16
  return c


def medium():
  c = recipes.medium()
  c.data.digits_size = 16
  return c


def paper():
  c = recipes.simclr_cifar()
  c.data.name = "stl10"
  return c


def get_config(arg=None):
  return experiments.study_config(
    arg,
    scales={"latent": recipes.latent, "small": small, "medium": medium, "paper": paper},
    runs=config_lib.grid(data__digits_pool=POOL_SIZES),
    report="digits_on_images",
  )


def accuracy_rows(entries) -> list[tuple[int, reporting.Value, reporting.Value]]:
  """(k, base linear accuracy, digit linear accuracy) of each run over seeds, by k."""
  rows = [
    (
      run["config"]["data"]["digits_pool"],
      reporting.accuracy(run),
      reporting.accuracy(run, "digit_linear_accuracy"),
    )
    for run in reporting.replicas(entries)
  ]
  return sorted(rows, key=lambda r: r[0])


def claims(entries) -> list[reporting.Claim] | None:
  """ "As k grows, base accuracy drops while digit accuracy rises" (`reporting.trend`
  along k, strict and against the noise); None with fewer than two runs."""
  rows = accuracy_rows(entries)
  if len(rows) < 2:
    return None
  base_strict, base_noisy = reporting.trend([r[1] for r in rows], -1)
  digit_strict, digit_noisy = reporting.trend([r[2] for r in rows], +1)
  return [
    reporting.Claim(
      "As k grows, base accuracy drops while digit accuracy rises",
      base_noisy and digit_noisy,
      f"Base {reporting.sequence(r[1].mean for r in rows)} "
      f"({'never rises' if base_strict else 'rises somewhere'}); digit "
      f"{reporting.sequence(r[2].mean for r in rows)} "
      f"({'never falls' if digit_strict else 'falls somewhere'}); k = "
      + ", ".join(str(r[0]) for r in rows)
      + ".",
      {
        "k": [r[0] for r in rows],
        "base": [r[1].mean for r in rows],
        "digit": [r[2].mean for r in rows],
      },
      strict=base_strict and digit_strict,
      noise=reporting.noise_basis([v for r in rows for v in r[1:]]),
    )
  ]


def report(workdir: str, entries: list[dict], config) -> reporting.Report:
  """report.md (both accuracies per k, the claim) and digits_on_images.png with its CSV."""
  rows = accuracy_rows(entries)
  paths = {"figure": os.path.join(workdir, "digits_on_images.png")}
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ks = [r[0] for r in rows]
  ax.semilogx(ks, [r[1].mean for r in rows], "o-", label="base labels")
  ax.semilogx(ks, [r[2].mean for r in rows], "s-", label="pasted digit")
  ax.set_xlabel("distinct digits k")
  ax.set_ylabel("linear accuracy")
  ax.legend(fontsize=7)
  reporting.save_figure(
    fig,
    paths["figure"],
    header=["digits_pool", "base_linear_accuracy", "digit_linear_accuracy", "seeds"],
    rows=[(k, b.mean, d.mean, b.seeds) for k, b, d in rows],
  )
  return reporting.write_report(
    workdir,
    "digits_on_images",
    title="Chen, Luo & Li (NeurIPS 2021): digits on images",
    intro=f"Base dataset `{config.data.name}`, {config.model.encoder}, batch "
    f"{config.data.batch_size}, {config.train.num_epochs} epochs per run; digits of the "
    f"embedded `digits` resized to {config.data.digits_size or 28} px. Linear accuracy of "
    "probes on the same frozen features. With k < 10 fewer than 10 digit classes occur "
    "(k = 1: one digit on every image, digit accuracy 1 trivially). The paper shows "
    "this as a figure without a table of numbers.",
    tables=reporting.markdown_table(
      ["k", "base linear acc", "digit linear acc"],
      [[k, b.text(), d.text()] for k, b, d in rows],
    ),
    claims=claims(entries),
    figures=[("accuracy against k", "digits_on_images.png")],
    paths=paths,
    seeds=reporting.seed_count(reporting.replicas(entries)),
    entries=entries,
  )
