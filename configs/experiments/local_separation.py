"""Wang & Liu (CVPR 2021) Fig. 8: the positive and the 10 nearest negatives across tau.

Command (a sweep of 6 runs):
  python run.py --config=configs/experiments/local_separation.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/local_separation.py:scale=paper --workdir=DIR

Everything of this study (published numbers, grid per scale, claims, report) lives
in `contrastive.experiments.local_separation`.
"""

from contrastive.experiments import local_separation


def get_config(arg=None):
  return local_separation.get_config(arg)
