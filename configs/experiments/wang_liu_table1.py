"""Wang & Liu (CVPR 2021) Table 1: the contrastive, simple, hard contrastive and
HardSimple losses across temperatures; accuracy, uniformity and tolerance.

Command (a sweep of 14 runs; `paper` trains on CIFAR-10 unless dataset= says otherwise):
  python run.py --config=configs/experiments/wang_liu_table1.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/wang_liu_table1.py:scale=paper --workdir=DIR

Everything of this study (published numbers, grid per scale, claims, report) lives
in `contrastive.experiments.wang_liu_table1`.
"""

from contrastive.experiments import wang_liu_table1


def get_config(arg=None):
  return wang_liu_table1.get_config(arg)
