"""Chen, Luo & Li (NeurIPS 2021) digits on images: the number of distinct digits k.

Command (a sweep of 6 runs, k in {1, 4, 16, 64, 256, 1024}):
  python run.py --config=configs/experiments/digits_on_images.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/digits_on_images.py:scale=paper,dataset=stl10 \\
    --workdir=DIR

Each image gets one of the first k training digits of the embedded `digits`
(MNIST-framed), pasted at one of 9 grid cells by pixel-wise max, fixed per image
(`suppression.digits_on_images`). Writes DIR/report.md: linear accuracy on the
base labels and on the pasted digit against k, and the paper's claim "as k grows
the digit competes with the object: accuracy on the base labels drops while digit
accuracy rises", with digits_on_images.png.

`small`: the quickstart's ConvN on the embedded 32x32 `shapes`, digits resized
to 16 px, 6 epochs per run. `paper`: configs/simclr_cifar10.py's recipe on
`dataset=` (the notebook used tf_flowers, which is not among our sources; STL-10's
96x96 images take the 28 px digits unresized). Digits on images runs on one host.
"""

from configs import common
from configs import simclr_cifar10
from configs.experiments import generalized_losses
from contrastive import sweep

POOL_SIZES = (1, 4, 16, 64, 256, 1024)


def small():
  c = generalized_losses.small()
  c.data.digits_size = 16
  return c


def paper():
  c = simclr_cifar10.get_config()
  c.data.name = "stl10"
  return c


def get_config(arg=None):
  return common.experiment(
    arg,
    small=small,
    paper=paper,
    runs=sweep.grid(data__digits_pool=POOL_SIZES),
    report="digits_on_images",
  )
