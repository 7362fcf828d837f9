"""The papers' training recipes, as complete configs: each a copy of `config.base()` edited.

Configs in `configs/` and the paper studies in `contrastive.experiments` start from
these, so an installed copy of the package has every recipe; each docstring names
its source. Published numbers live with the study that reproduces them.
"""

from contrastive import config as config_lib


def quickstart():
  """SimCLR on the embedded `shapes` with the small ConvN, no download: 8 epochs,
  about 65 seconds on 2 CPU cores (`configs/quickstart.py`).

  8 epochs, not the 15 it had until 2026-12-06, to fit a newcomer's first run in 90
  s: 15 epochs reached kNN 0.954 and linear 0.987 on the same machine that day, 8
  reach about 0.86 and 0.96 (raw pixels 0.615; README)."""
  c = config_lib.base()
  c.data.update(name="shapes", batch_size=128, augment="simclr_cifar")
  c.model.update(encoder="convn", out_dim=64, hidden_dim=256)
  c.optimizer.update(
    learning_rate=0.1,
    exclude_bn_and_bias=True,
    schedule="warmup_cosine",
    warmup_epochs=0.2,
    decay_epochs=(),
  )
  c.train.update(num_epochs=8, log_every=20, checkpoint_every=500)
  c.eval.update(
    linear_epochs=30, linear_learning_rate=0.1, linear_decay_epochs=(20,), linear_decay_factor=0.1
  )
  # Training-time probes: an online linear probe, a kNN monitor every 3 epochs.
  c.eval.update(online_probe=True, monitor_every=3 * (10_000 // 128))
  return c


def small():
  """The `small` scale the paper studies share: the quickstart for 6 epochs, without
  its training-time probes (the studies measure the trained states), logged every 10
  steps."""
  c = quickstart()
  c.train.update(num_epochs=6, log_every=10)
  c.eval.update(online_probe=False, monitor_every=0)
  return c


def latent():
  """The `latent` scale: SimCLR on the latent test-bed (`data.latent`), an MLP encoder.

  The MLP (2 x 128, BN, ReLU) and SimCLR's 2-layer head (128 hidden, 64 out), batch
  256, NT-Xent at tau 0.2; Adam 1e-3 with a cosine decay, 25 epochs of the 10,240
  instances (1,000 steps); a 30-epoch linear probe. Sized on 2026-12-06 so that a
  study with 5 seeds fits 10 minutes on 2 CPU cores: the first sizing (2 x 256, 2,000
  steps) took 388 s for one seed of Table 1's 14 runs.
  """
  c = config_lib.base()
  c.data.update(name="latent", batch_size=256)
  c.model.update(encoder="mlp", width=128, out_dim=64, hidden_dim=128, head_depth=2)
  c.loss.update(name="contrastive", layout="simclr", temperature=0.2)
  c.optimizer.update(name="adam", learning_rate=1e-3, weight_decay=0.0, schedule="warmup_cosine",
                     warmup_epochs=1, decay_epochs=())  # fmt: skip
  c.train.update(num_epochs=25, log_every=100, tensorboard=False, checkpoint_every=5000)
  c.eval.update(linear_epochs=30, linear_learning_rate=0.1, linear_decay_epochs=(20,),
                linear_decay_factor=0.1, online_probe=False, monitor_every=0)  # fmt: skip
  return c


def medium():
  """The `medium` scale the paper studies share: one study on one GPU in minutes.

  SimCLR's recipe (`simclr_cifar`) with ResNet-18 in bfloat16 on the CIFAR-like
  `objects` (50,000 images), batch 512, 15 epochs (1 of warmup), a 30-epoch linear
  probe. Runs train separately: a ResNet-18 temperature population is 1.7x slower
  per step on an H100 than its separate runs (BENCHMARKS.md), so populations pay
  only for small models (`experiments.randbit`'s ConvN). Timed on one H100 in
  BENCHMARKS.md; it runs on a CPU too, slowly.
  """
  c = simclr_cifar()
  c.data.update(name="objects", batch_size=512)
  c.model.dtype = "bfloat16"
  c.optimizer.update(learning_rate=0.3 * 512 / 256, warmup_epochs=1)
  c.train.update(num_epochs=15, log_every=20, checkpoint_every=1000)
  c.eval.update(linear_epochs=30, linear_decay_epochs=(20,))
  return c


def wang_liu(dataset: str = "cifar10"):
  """Wang & Liu (CVPR 2021), spec 1.4: NPID memory bank, ResNet-18, 200 epochs.

  ResNet-18 with the CIFAR stem; memory bank of every training instance (momentum
  0.5, 128-d: NPID's defaults, the paper is silent); hard negatives: the 4095 most
  similar (alpha = 0.0819); NPID augmentation; SGD momentum 0.9, lr 0.03, batch
  128, weight decay 5e-4, 200 epochs, lr x0.1 at 160 and 190; linear evaluation
  100 epochs, SGD lr 30, x0.2 at 40, 60, 80, no weight decay.
  """
  c = config_lib.base()
  c.data.update(name=dataset, batch_size=128, image_size=32, augment="npid")
  c.model.update(encoder="resnet18", stem="cifar", out_dim=128, head_depth=1)
  c.loss.update(layout="memory_bank", num_hard=4095, bank_momentum=0.5)
  return c


def wang_liu_imagenet100():
  """Wang & Liu (CVPR 2021) on ImageNet-100, spec 1.4: as `wang_liu`, but ResNet-50
  with the ImageNet stem on 224x224 crops, Gaussian blur added to NPID's
  augmentation (`npid_imagenet`), weight decay 1e-4.

  ImageNet-100 streams from a prepared TFDS `imagenet2012` (`data.streaming`): crops
  on the host, colour on the device; a memory bank row for every training image.
  """
  c = wang_liu("imagenet100")
  c.data.update(image_size=224, augment="npid_imagenet")
  c.model.update(encoder="resnet50", stem="imagenet")
  c.optimizer.weight_decay = 1e-4
  return c


def simclr_cifar():
  """SimCLR's in-batch recipe on CIFAR-10 (spec 4): NT-Xent over 2N-2 negatives.

  tau 0.2, batch 512, LARS lr 0.3 x batch/256 (SimCLR's linear scaling), warmup
  10 epochs then cosine, weight decay 1e-6 excluding BN and biases, 2-layer head to
  128-d, SimCLR's CIFAR augmentation (strength 0.5, no blur), 200 epochs.
  """
  c = config_lib.base()
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
  return c


def randbit():
  """Chen, Luo & Li's RandBit notebook: MNIST with 10 RandBit bits.

  ConvN encoder (3 conv3x3 stride-2, 32/64/64, BN, ReLU; Dense 128), head Dense
  256-BN-ReLU then Dense 64; crop area 0.5-1, no colour augmentation; cross-view
  negatives, both directions; Adam 1e-3 with linear decay; L2 1e-4; batch 1000;
  10 epochs.
  """
  c = config_lib.base()
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
  return c
