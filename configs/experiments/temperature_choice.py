"""Ways of choosing tau on one footing: a fixed grid, a cosine schedule, MACL, a learned
global tau and iSogCLR's learned per-sample tau.

Command (a sweep of 7 runs):
  python run.py --config=configs/experiments/temperature_choice.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/temperature_choice.py:scale=medium --workdir=DIR

Everything of this study (grid per scale, claims, report) lives in
`contrastive.experiments.temperature_choice`.
"""

from contrastive.experiments import temperature_choice


def get_config(arg=None):
  return temperature_choice.get_config(arg)
