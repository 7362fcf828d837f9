"""Wang & Liu (CVPR 2021) Fig. 3: the relative penalty against similarity, per tau.

Command:
  python run.py --config=configs/relative_penalty.py --workdir=/tmp/contrastive/fig3

Writes relative_penalty.png, the plotted numbers and report.md with the claims
(`contrastive.experiments.relative_penalty`).
"""

from contrastive.experiments import relative_penalty


def get_config(arg=None):
  return relative_penalty.get_config(arg)
