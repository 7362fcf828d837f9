"""Wang & Liu (CVPR 2021) Fig. 3: the relative penalty against similarity, per tau.

Command:
  python run.py --config=configs/relative_penalty.py --workdir=/tmp/contrastive/fig3

Writes relative_penalty.png and the plotted numbers (relative_penalty.csv,
penalty_entropy.csv). The published figure shows r(s) rising ever more steeply
toward s = 1 as tau falls; the entropy panel shows it falls monotonically with tau.
"""

import ml_collections
import numpy as np


def get_config():
  config = ml_collections.ConfigDict()
  config.job = "relative_penalty_figure"
  config.temperatures = (0.07, 0.2, 0.3, 0.5, 0.7, 1.0)
  config.num_points = 201
  config.entropy_temperatures = tuple(float(t) for t in np.geomspace(0.01, 10.0, 61))
  return config
