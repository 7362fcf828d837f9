"""Quickstart: SimCLR on the embedded `shapes` dataset, a narrow ResNet-18, no download.

Command:
  python run.py --config=configs/quickstart.py --workdir=/tmp/contrastive/quickstart

Expected (2 CPU cores, about 5 minutes): knn_accuracy at least
pixel_knn_accuracy + 0.10 (raw-pixel kNN on `shapes` is 0.175).
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.data.update(name="shapes", batch_size=128, augment="simclr_cifar")
  c.model.update(width=8, out_dim=64, hidden_dim=256)
  c.optimizer.update(
    learning_rate=0.1,
    exclude_bn_and_bias=True,
    schedule="warmup_cosine",
    warmup_epochs=0.2,
    decay_epochs=(),
  )
  c.train.update(num_epochs=3, log_every=10, checkpoint_every=100)
  c.eval.update(
    linear_epochs=30, linear_learning_rate=0.1, linear_decay_epochs=(20,), linear_decay_factor=0.1
  )
  return common.apply_arguments(c, arg)
