"""Wang & Liu (CVPR 2021) on cifar100: the CIFAR-10 recipe (configs/cifar10.py).

Command:
  python run.py --config=configs/cifar100.py:loss=hard_contrastive,temperature=0.7 --workdir=DIR

The published numbers: `contrastive.experiments.wang_liu_table1` (PUBLISHED["cifar100"]).
Needs the dataset prepared: tfds build cifar100 --data_dir=DIR.
"""

from contrastive import config
from contrastive import recipes


def get_config(arg=None):
  return config.apply(recipes.wang_liu("cifar100"), arg)
