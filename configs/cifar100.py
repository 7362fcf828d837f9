"""Wang & Liu (CVPR 2021) on cifar100: the CIFAR-10 recipe (configs/cifar10.py).

Command:
  python run.py --config=configs/cifar100.py:loss=hard_contrastive,temperature=0.7 --workdir=DIR

Published linear accuracy (Table 1): contrastive 51.82 / 56.44 / 50.99 / 48.33 at tau
0.07 / 0.3 / 0.7 / 1.0; hard contrastive 50.77 / 56.55 / 57.54 / 56.77; simple 39.31;
HardSimple 55.71. Needs the dataset prepared: tfds build cifar100 --data_dir=DIR.
"""

from configs import cifar10
from configs import common


def get_config(arg=None):
  c = cifar10.get_config()
  c.data.name = "cifar100"
  return common.apply_arguments(c, arg)
