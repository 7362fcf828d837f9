"""Wang & Liu (CVPR 2021) on svhn_cropped: the CIFAR-10 recipe (configs/cifar10.py).

Command:
  python run.py --config=configs/svhn.py:loss=hard_contrastive,temperature=0.7 --workdir=DIR

The published numbers: `contrastive.experiments.wang_liu_table1` (PUBLISHED["svhn_cropped"]).
Needs the dataset prepared: tfds build svhn_cropped --data_dir=DIR.
"""

from contrastive import config
from contrastive import recipes


def get_config(arg=None):
  return config.apply(recipes.wang_liu("svhn_cropped"), arg)
