"""Chen, Luo & Li (NeurIPS 2021) digits on images: the number of distinct digits k.

Command (a sweep of 6 runs, k in {1, 4, 16, 64, 256, 1024}):
  python run.py --config=configs/experiments/digits_on_images.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/digits_on_images.py:scale=paper,dataset=stl10 \\
    --workdir=DIR

Everything of this study (published numbers, grid per scale, claims, report) lives
in `contrastive.experiments.digits_on_images`.
"""

from contrastive.experiments import digits_on_images


def get_config(arg=None):
  return digits_on_images.get_config(arg)
