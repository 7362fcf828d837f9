"""Huang et al. (ICML 2023) MACL: a fixed temperature against MACL's adaptive one.

Command (a sweep of 4 runs):
  python run.py --config=configs/experiments/macl.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/macl.py:scale=paper --workdir=DIR

Everything of this study (published numbers, grid per scale, claims, report) lives
in `contrastive.experiments.macl`.
"""

from contrastive.experiments import macl


def get_config(arg=None):
  return macl.get_config(arg)
