"""Chen, Luo & Li (NeurIPS 2021) Fig. 5a: RandBit bits suppress the digit feature.

Command (a sweep: tau in {0.05, 0.1, 0.2} x bits in {0, 5, 10, 15, 20}):
  python run.py --config=configs/experiments/randbit.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/randbit.py:scale=paper,dataset=mnist --workdir=DIR

Everything of this study (published numbers, grid per scale, claims, report) lives
in `contrastive.experiments.randbit`.
"""

from contrastive.experiments import randbit


def get_config(arg=None):
  return randbit.get_config(arg)
