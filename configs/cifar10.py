"""Wang & Liu (CVPR 2021) on CIFAR-10: NPID memory bank, ResNet-18, 200 epochs.

Command (loss and temperature as arguments; Table 1's grid):
  python run.py --config=configs/cifar10.py:loss=contrastive,temperature=0.3 --workdir=DIR
  python run.py --config=configs/cifar10.py:loss=hard_contrastive,temperature=0.7 --workdir=DIR
  python run.py --config=configs/cifar10.py:loss=simple --workdir=DIR

Published linear accuracy (Table 1): contrastive 79.75 / 83.27 / 82.69 / 82.21 at
tau 0.07 / 0.3 / 0.7 / 1.0; hard contrastive 79.2 / 83.63 / 84.19 / 84.19; simple
74.83; HardSimple 84.84. Needs CIFAR-10 prepared: tfds build cifar10 --data_dir=DIR.

Settings (spec 1.4): ResNet-18 with the CIFAR stem; memory bank of every training
instance (momentum 0.5, 128-d: NPID's defaults, the paper is silent); hard
negatives: the 4095 most similar (alpha = 0.0819); NPID augmentation; SGD momentum
0.9, lr 0.03, batch 128, weight decay 5e-4, 200 epochs, lr x0.1 at 160 and 190;
linear evaluation 100 epochs, SGD lr 30, x0.2 at 40, 60, 80, no weight decay.
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.data.update(name="cifar10", batch_size=128, image_size=32, augment="npid")
  c.model.update(encoder="resnet18", stem="cifar", out_dim=128, head_depth=1)
  c.loss.update(layout="memory_bank", num_hard=4095, bank_momentum=0.5)
  return common.apply_arguments(c, arg)
