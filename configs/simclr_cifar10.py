"""SimCLR's in-batch recipe on CIFAR-10: NT-Xent over 2N-2 global-batch negatives.

Command:
  python run.py --config=configs/simclr_cifar10.py --workdir=DIR

Reference (spec 4): ResNet-18 SimCLR reaches ~0.848 kNN at 200 epochs and 0.879
at 800 (batch 512), ~90.7% linear at 1000 epochs (tau 0.2, batch 256, LARS).
Settings: tau 0.2, batch 512, LARS lr 0.3 x batch/256 (SimCLR's linear scaling),
warmup 10 epochs then cosine, weight decay 1e-6 excluding BN and biases, 2-layer
head to 128-d, SimCLR's CIFAR augmentation (strength 0.5, no blur).
"""

from configs import common


def get_config(arg=None):
  c = common.base()
  c.data.update(name="cifar10", batch_size=512, image_size=32, augment="simclr_cifar")
  c.model.update(encoder="resnet18", stem="cifar", out_dim=128, hidden_dim=512, head_depth=2)
  c.loss.update(name="contrastive", layout="simclr", temperature=0.2)
  c.optimizer.update(
    name="lars",
    learning_rate=0.3 * 512 / 256,
    weight_decay=1e-6,
    exclude_bn_and_bias=True,
    schedule="warmup_cosine",
    warmup_epochs=10,
    decay_epochs=(),
  )
  c.train.update(num_epochs=200)
  c.eval.update(linear_learning_rate=0.1, linear_decay_factor=0.1, linear_decay_epochs=(60, 80))
  return common.apply_arguments(c, arg)
