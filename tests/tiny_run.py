"""Trains the tiny test config into WORKDIR: `python tests/tiny_run.py WORKDIR [CACHE [tb]]`.

Used by tests/test_checkpoint.py, which kills it mid-run and runs it again. With
CACHE, compiled programs are kept there (`step_lib.enable_compilation_cache`, as
run.py does), so the runs after the first load them instead of compiling. With
`tb`, TensorBoard events are written too.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from contrastive import recipes  # noqa: E402
from contrastive import step as step_lib  # noqa: E402
from contrastive import train  # noqa: E402


def tiny_config():
  config = recipes.quickstart()
  config.data.name, config.data.image_size, config.data.augment = "digits", 28, "randbit"
  config.data.batch_size = 64
  config.model.encoder, config.model.out_dim = "convn", 32
  config.loss.name, config.loss.layout, config.loss.num_hard = (
    "hard_contrastive",
    "memory_bank",
    100,
  )
  config.train.num_epochs, config.train.log_every, config.train.tensorboard = 2, 5, False
  config.train.checkpoint_every = 5
  # Kukleva et al.'s cosine temperature schedule, a whole period over the run: the
  # kill-and-resume tests then check that a resumed run continues it exactly.
  config.loss.temperature_schedule = "cosine"
  config.loss.temperature_half_period_epochs = 1.0
  config.eval.linear_epochs, config.eval.linear_decay_epochs = 5, ()
  return config


if __name__ == "__main__":
  if len(sys.argv) > 2:
    step_lib.enable_compilation_cache(sys.argv[2])
  config = tiny_config()
  config.train.tensorboard = sys.argv[3:4] == ["tb"]
  train.train_and_evaluate(config, sys.argv[1])
