"""SimCLR's in-batch recipe on CIFAR-10: NT-Xent over 2N-2 global-batch negatives.

Command:
  python run.py --config=configs/simclr_cifar10.py --workdir=DIR

Reference (spec 4): ResNet-18 SimCLR reaches ~0.848 kNN at 200 epochs and 0.879
at 800 (batch 512), ~90.7% linear at 1000 epochs (tau 0.2, batch 256, LARS).
The recipe: `contrastive.recipes.simclr_cifar`.
"""

from contrastive import config
from contrastive import recipes


def get_config(arg=None):
  return config.apply(recipes.simclr_cifar(), arg)
