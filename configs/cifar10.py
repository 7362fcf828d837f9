"""Wang & Liu (CVPR 2021) on CIFAR-10: NPID memory bank, ResNet-18, 200 epochs.

Command (loss and temperature as arguments; Table 1's grid):
  python run.py --config=configs/cifar10.py:loss=contrastive,temperature=0.3 --workdir=DIR
  python run.py --config=configs/cifar10.py:loss=hard_contrastive,temperature=0.7 --workdir=DIR
  python run.py --config=configs/cifar10.py:loss=simple --workdir=DIR

The published numbers of each column: `contrastive.experiments.wang_liu_table1`
(PUBLISHED), which also runs the whole table as one sweep. The recipe (spec 1.4):
`contrastive.recipes.wang_liu`. Needs CIFAR-10 prepared: tfds build cifar10 --data_dir=DIR.
"""

from contrastive import config
from contrastive import recipes


def get_config(arg=None):
  return config.apply(recipes.wang_liu("cifar10"), arg)
