"""Chen, Luo & Li (NeurIPS 2021) Fig. 1: generalized contrastive losses and head depth,
every loss scaled to NT-Xent's gradient norm, its knob chosen on a held-out split.

Commands (two stages of 15 runs each; `scale=medium` or `paper` likewise):
  python run.py --config=configs/experiments/generalized_losses.py:scale=small \
    --workdir=DIR/selection
  python run.py \
    --config=configs/experiments/generalized_losses.py:scale=small,selection=DIR/selection \
    --workdir=DIR

Everything of this study (grid per scale and stage, claims, report) lives in
`contrastive.experiments.generalized_losses`.
"""

from contrastive.experiments import generalized_losses


def get_config(arg=None):
  return generalized_losses.get_config(arg)
