"""Chen, Luo & Li (NeurIPS 2021) RandBit: easy bits suppress the digit feature.

Command (bits and temperature as arguments):
  python run.py --config=configs/randbit.py:bits=10,temperature=0.05 --workdir=DIR
  python run.py --config=configs/randbit.py:dataset=digits,bits=5 --workdir=DIR  # no download

Published MNIST accuracy of the online linear classifier (Fig. 5a), tau 0.05 /
0.1 / 0.2 with 0 / 5 / 10 / 15 / 20 bits: 0.8992 0.7063 0.3299 0.1426 0.0990 /
0.8916 0.6118 0.1867 0.0980 0.1033 / 0.8998 0.3299 0.1035 0.1003 0.0989. Ours
reports the linear probe on frozen features (the online probe is not implemented).

Settings (official notebook): ConvN encoder (3 conv3x3 stride-2, 32/64/64, BN,
ReLU; Dense 128), head Dense 256-BN-ReLU then Dense 64; crop area 0.5-1, no colour
augmentation; cross-view negatives, both directions; Adam 1e-3 with linear decay;
L2 1e-4; batch 1000; 10 epochs. Needs MNIST prepared: tfds build mnist --data_dir=DIR
(or dataset=digits, the embedded stand-in).
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.data.update(name="mnist", batch_size=1000, image_size=28, augment="randbit", randbit_bits=10)
  c.model.update(encoder="convn", out_dim=64, hidden_dim=256, head_depth=2)
  c.loss.update(name="contrastive", layout="cross_view", temperature=0.1)
  c.optimizer.update(
    name="adam",
    learning_rate=1e-3,
    weight_decay=1e-4,
    exclude_bn_and_bias=True,
    schedule="linear",
    decay_epochs=(),
  )
  c.train.update(num_epochs=10, log_every=10)
  c.eval.update(
    linear_epochs=30, linear_learning_rate=0.1, linear_decay_epochs=(20,), linear_decay_factor=0.1
  )
  return common.apply_arguments(c, arg)
