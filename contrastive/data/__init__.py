"""Input pipelines: dataset sources, augmentation, batching and feature suppression.

* `sources`: `load(name)` gives uint8 images and int32 labels for train and test,
  from TFDS (`cifar10`, `cifar100`, `svhn_cropped`, `stl10`, `mnist`,
  `imagenet100`) or embedded in the package (`digits`, `shapes`, `shapes_colour`: no download).
* `augment`: SimCLR/NPID augmentation in JAX, jitted and vmapped, a key per image.
* `pipeline`: datasets held on the accelerator and batches gathered and augmented
  there; epoch order from (seed, epoch), so a resumed run sees the same batches.
* `streaming`: datasets read from disk as they train (ImageNet-100): host crops,
  device colour, a resumable order.
* `suppression`: RandBit, digits-on-images and MultiDigits (Chen et al.).
* `datasets`: `prepare(config.data)`, a run's data as the trainer and evaluation
  read it (both splits on the device, suppression applied, probe label sets).
"""
