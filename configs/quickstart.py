"""Quickstart: SimCLR on the embedded `shapes` dataset, a narrow ResNet-18, no download.

Command:
  python run.py --config=configs/quickstart.py --workdir=/tmp/contrastive/quickstart

Runs in about 5 minutes on 2 CPU cores. Expected: knn_accuracy at least
pixel_knn_accuracy + 0.10 (raw-pixel kNN on `shapes` is 0.175).
"""

import ml_collections
from ml_collections import config_dict


def get_config():
  c = ml_collections.ConfigDict()
  c.job = "train"
  c.seed = 0
  c.data = ml_collections.ConfigDict(
    dict(
      name="shapes",
      data_dir="",
      batch_size=128,
      image_size=32,
      augment="simclr_cifar",
      randbit_bits=0,
    )
  )
  c.model = ml_collections.ConfigDict(
    dict(
      encoder="resnet18",
      stem="cifar",
      width=8,
      out_dim=64,
      hidden_dim=256,
      head_depth=2,
      dtype="float32",
    )
  )
  c.loss = ml_collections.ConfigDict(
    dict(
      name="contrastive",
      layout="simclr",
      temperature=0.2,
      num_hard=4095,
      hard_fraction=config_dict.placeholder(float),
      simple_weight=config_dict.placeholder(float),
      macl_alpha=0.5,
      macl_alignment_ref=0.0,
      macl_schedule="linear",
      distribution="logsumexp",
      weight=1.0,
      normalize=True,
      bank_momentum=0.5,
    )
  )
  c.optimizer = ml_collections.ConfigDict(
    dict(
      name="sgd",
      learning_rate=0.1,
      momentum=0.9,
      weight_decay=5e-4,
      exclude_bn_and_bias=True,
      schedule="warmup_cosine",
      warmup_epochs=0.2,
      decay_epochs=(),
      decay_factor=0.1,
    )
  )
  c.train = ml_collections.ConfigDict(
    dict(num_epochs=3, log_every=10, tensorboard=True, checkpoint_every=100, checkpoints_to_keep=3)
  )
  c.eval = ml_collections.ConfigDict(
    dict(
      knn_k=200,
      knn_temperature=0.1,
      linear_epochs=30,
      linear_learning_rate=0.1,
      linear_batch_size=256,
      linear_decay_epochs=(20,),
      linear_decay_factor=0.1,
    )
  )
  return c
