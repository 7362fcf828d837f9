"""Wang & Liu (CVPR 2021) on svhn_cropped: the CIFAR-10 recipe (configs/cifar10.py).

Command:
  python run.py --config=configs/svhn.py:loss=hard_contrastive,temperature=0.7 --workdir=DIR

Published linear accuracy (Table 1): contrastive 92.55 / 95.47 / 94.17 / 92.07 at tau
0.07 / 0.3 / 0.7 / 1.0; hard contrastive 91.82 / 94.79 / 95.02 / 95.26; simple 70.83;
HardSimple 94.99. Needs the dataset prepared: tfds build svhn_cropped --data_dir=DIR.
"""

from configs import cifar10
from configs import common


def get_config(arg=None):
  c = cifar10.get_config()
  c.data.name = "svhn_cropped"
  return common.apply_arguments(c, arg)
