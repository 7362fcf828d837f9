"""Chen, Luo & Li (NeurIPS 2021) Fig. 1: generalized contrastive losses and head depth.

Command (a sweep of 15 runs: 5 losses x projection heads of depth 1, 2, 3):
  python run.py --config=configs/experiments/generalized_losses.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/generalized_losses.py:scale=paper --workdir=DIR

Writes DIR/report.md: linear accuracy of each loss at each head depth, and the
paper's finding "with a deep projection head, all these losses reach similar
linear accuracy" checked on our numbers (spread across losses at the deepest
head, against the shallowest), with generalized_losses.png.

Losses: NT-Xent (tau 0.2); decoupled NT-Xent (the generalized loss with the
logsumexp distribution term, tau 1.0, lambda 0.1); the sliced Wasserstein distance
to three priors, lambda 5: Gaussian (features not normalised: with normalisation
the official code normalises the prior too, which makes it the hypersphere),
uniform hypersphere (normalised), uniform hypercube (not normalised). The tau and
lambda values of the last four come from a third-party reproduction (spec 2.1).
`paper`: configs/simclr_cifar10.py (ResNet-18; the paper used ResNet-50).
`small`: the quickstart's ConvN on the embedded `shapes`, 6 epochs per run.
"""

from configs import common
from configs import quickstart
from configs import simclr_cifar10

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


def loss_label(loss_config) -> str:
  """The row label of a run's loss config (a dict or ConfigDict)."""
  if loss_config["name"] == "contrastive":
    return "NT-Xent"
  if loss_config["distribution"] == "logsumexp":
    return "decoupled NT-Xent"
  return "SWD " + loss_config["distribution"].removeprefix("swd_").replace("gaussian", "Gaussian")


def small():
  c = quickstart.get_config()
  c.train.num_epochs = 6
  return c


def get_config(arg=None):
  return common.experiment(
    arg,
    small=small,
    paper=simclr_cifar10.get_config,
    runs=(f"{o},model.head_depth={depth}" for _, o in LOSSES for depth in HEAD_DEPTHS),
    report="generalized_losses",
  )
