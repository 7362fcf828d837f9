"""Chen, Luo & Li (NeurIPS 2021) Fig. 1: generalized contrastive losses and head depth.

Command (a sweep of 15 runs: 5 losses x projection heads of depth 1, 2, 3):
  python run.py --config=configs/experiments/generalized_losses.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/generalized_losses.py:scale=paper --workdir=DIR

Everything of this study (published numbers, grid per scale, claims, report) lives
in `contrastive.experiments.generalized_losses`.
"""

from contrastive.experiments import generalized_losses


def get_config(arg=None):
  return generalized_losses.get_config(arg)
