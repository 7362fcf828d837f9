"""Chen, Luo & Li (NeurIPS 2021) RandBit: easy bits suppress the digit feature.

Command (bits and temperature as arguments):
  python run.py --config=configs/randbit.py:bits=10,temperature=0.05 --workdir=DIR
  python run.py --config=configs/randbit.py:dataset=digits,bits=5 --workdir=DIR  # no download

The published numbers and the whole grid as one sweep: `contrastive.experiments.randbit`.
The recipe (the official notebook's): `contrastive.recipes.randbit`. Needs MNIST
prepared: tfds build mnist --data_dir=DIR (or dataset=digits, the embedded stand-in).
"""

from contrastive import config
from contrastive import recipes


def get_config(arg=None):
  return config.apply(recipes.randbit(), arg)
