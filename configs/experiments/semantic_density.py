"""The latent test-bed's prediction: the best temperature rises as same-class
neighbours crowd closer (4 within-class spreads x 6 temperatures).

Command:
  python run.py --config=configs/experiments/semantic_density.py:scale=latent,seeds=5 --workdir=DIR

Everything of this study (grid, claim, report) lives in
`contrastive.experiments.semantic_density`.
"""

from contrastive.experiments import semantic_density


def get_config(arg=None):
  return semantic_density.get_config(arg)
