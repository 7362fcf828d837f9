"""Datasets streamed from disk (ImageNet-100): crops on the host, colour on the device.

For datasets that do not fit on the accelerator, `open_split` names a TFDS split
(this process's shard of it) and counts its examples; the trainer then reads
`train_batches` and evaluation `eval_batches` / `view_batches`, each a host
iterator of uint8 arrays. Batches leave the host as uint8 crops (a quarter of
float32's transfer) and `augment.photometric_batch` applies the colour steps on
the device, with the keys `augment` would use.

Identity and order. The stream's order is fixed (`sources.imagenet100_stream`),
so an example's position in it is its identity: example k of process p has the
global index offset_p + k (the memory bank's row), whatever the epoch. Each epoch
shuffles with a buffer seeded by (seed, epoch) and every view's crop is seeded by
(seed, epoch, index), so the batches of step s are a pure function of (seed, s):
a run resumed at step s skips the epoch's first s mod E batches (E per epoch) of
still-encoded examples and continues exactly as an uninterrupted run would.

Every process reads its own shard and contributes batch_size / processes images a
step; an epoch is as many steps as the smallest shard fills (the shards of a class
subset differ by a few examples), so every process runs the same steps.
"""

import dataclasses

import jax
from jax.experimental import multihost_utils
import numpy as np

from contrastive.data import augment
from contrastive.data import sources

# Examples in the training shuffle buffer (still JPEG-encoded: ~110 KB each on
# ImageNet, so ~1 GiB of host memory).
SHUFFLE_BUFFER = 10_000
# ImageNet's evaluation crop: the shorter side resized to size / 0.875, centre crop.
EVAL_CROP_FRACTION = 0.875


@dataclasses.dataclass(frozen=True)
class StreamData:
  """One split streamed from TFDS, this process's shard of it.

  Attributes:
    name: the dataset's name (`sources.STREAMING_DATASETS`).
    split: the TFDS split ("train", "validation").
    data_dir: the TFDS data directory, or None for TFDS's default.
    counts: every process's number of examples, in process order.
    num_classes: the number of classes.
  """

  name: str
  split: str
  data_dir: str | None
  counts: tuple[int, ...]
  num_classes: int

  @property
  def num_examples(self) -> int:
    """Examples over all processes: the memory bank's rows."""
    return sum(self.counts)

  @property
  def offset(self) -> int:
    """The global index of this process's first example."""
    return sum(self.counts[: jax.process_index()])

  def steps_per_epoch(self, batch_size: int) -> int:
    """Steps of `batch_size` images (global) per epoch: what the smallest shard fills."""
    local = local_batch_size(batch_size)
    if min(self.counts) < local:
      raise ValueError(
        f"data.batch_size={batch_size} needs {local} examples per process, but a shard of "
        f"{self.name} {self.split} has {min(self.counts)}; use a smaller batch."
      )
    return min(self.counts) // local


def local_batch_size(batch_size: int) -> int:
  """This process's share of a global batch."""
  processes = jax.process_count()
  if batch_size % processes:
    raise ValueError(
      f"data.batch_size={batch_size} must be a multiple of the process count ({processes})."
    )
  return batch_size // processes


def _stream(name: str, split: str, data_dir, *, decode: bool):
  if name != "imagenet100":
    raise ValueError(f"Unknown streamed dataset {name!r}; valid: imagenet100.")
  return sources.imagenet100_stream(
    split,
    data_dir=data_dir,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    decode=decode,
  )


def open_split(name: str, split: str, *, data_dir=None) -> StreamData:
  """The split `split` of streamed dataset `name`, its examples counted.

  Counting reads this process's shard once without decoding an image (the labels
  decide which examples the class subset keeps); the counts are then shared by
  all processes. Raises `sources.DatasetNotPreparedError` if TFDS has not
  prepared the dataset in `data_dir`.
  """
  import tensorflow as tf  # noqa: PLC0415

  ds = _stream(name, split, data_dir, decode=False)
  local = int(ds.map(lambda ex: 1).reduce(tf.constant(0), lambda a, b: a + b))
  if jax.process_count() > 1:
    counts = np.asarray(multihost_utils.process_allgather(np.int64(local))).reshape(-1)
  else:
    counts = np.asarray([local])
  return StreamData(name, split, data_dir, tuple(int(c) for c in counts), num_classes=100)


def _examples(data: StreamData):
  """This process's examples in their fixed order, images still encoded, each with
  its global "index"."""
  import tensorflow as tf  # noqa: PLC0415

  offset = tf.constant(data.offset, tf.int64)
  return (
    _stream(data.name, data.split, data.data_dir, decode=False)
    .enumerate()
    .map(lambda k, ex: {**ex, "index": k + offset})
  )


def _decode(example):
  import tensorflow as tf  # noqa: PLC0415

  return tf.io.decode_image(example["image"], channels=3, expand_animations=False)


def _two_crops(example, seed, epoch, config: augment.AugmentConfig):
  """Two random resized crops (with flips) of one example: uint8 [2, S, S, 3].

  TF's stateless `sample_distorted_bounding_box` (the area and aspect ranges of
  `augment.crop_box`, up to 10 attempts, the whole image as fallback; TF's sampler,
  not torchvision's, so boxes are not bit-identical to the device's), antialiased
  bilinear resizing. View v's seed is (seed, (epoch * 2^40) + 2 index + v).
  """
  import tensorflow as tf  # noqa: PLC0415

  image = _decode(example)
  views = []
  for v in range(2):
    view_seed = tf.stack(
      [tf.constant(seed, tf.int64), tf.constant(epoch, tf.int64) * 2**40 + example["index"] * 2 + v]
    )
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image),
      bounding_boxes=tf.zeros([1, 0, 4]),
      seed=view_seed,
      area_range=config.crop_scale,
      aspect_ratio_range=config.crop_ratio,
      max_attempts=10,
      use_image_if_no_bounding_boxes=True,
    )
    x = tf.image.resize(
      tf.slice(image, begin, extent), [config.size, config.size], method="bilinear", antialias=True
    )
    flip = tf.random.stateless_uniform([], seed=view_seed + [0, 1]) < config.flip_prob
    x = tf.cond(flip, lambda x=x: tf.image.flip_left_right(x), lambda x=x: x)
    views.append(tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8))
  return tf.stack(views)


def crops(ds, *, config: augment.AugmentConfig, seed: int, epoch: int):
  """The host half of training augmentation, on a `tf.data.Dataset` of examples
  {"image": encoded bytes, "index": int64, "label": int32}: each decoded and cut into
  two random resized crops (with flips), in parallel and in order. Returns a dataset
  of {"views": uint8 [2, S, S, 3], "index": int32, "label": int32}."""
  import tensorflow as tf  # noqa: PLC0415

  return ds.map(
    lambda ex: {
      "views": _two_crops(ex, seed, epoch, config),
      "index": tf.cast(ex["index"], tf.int32),
      "label": ex["label"],
    },
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=True,
  )


def _centre_crop(example, size: int):
  """The evaluation view: shorter side to size / 0.875, then the centre size x size."""
  import tensorflow as tf  # noqa: PLC0415

  image = _decode(example)
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = (size / EVAL_CROP_FRACTION) / tf.reduce_min(shape)
  resized = tf.cast(tf.math.ceil(shape * scale), tf.int32)
  x = tf.image.resize(image, resized, method="bilinear", antialias=True)
  top = (resized[0] - size) // 2
  left = (resized[1] - size) // 2
  x = x[top : top + size, left : left + size]
  return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)


def _numpy(ds):
  import tensorflow as tf  # noqa: PLC0415

  return ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def train_batches(
  data: StreamData,
  *,
  batch_size: int,
  config: augment.AugmentConfig,
  seed: int,
  start_step: int = 0,
  shuffle_buffer: int = SHUFFLE_BUFFER,
):
  """This process's training batches from global step `start_step` on, endlessly.

  Args:
    data: the training split (`open_split`).
    batch_size: the global batch; this process yields its share
      (`local_batch_size`).
    config: the augmentation recipe (its crop, flip and size are applied here).
    seed: the data seed (order and crops).
    start_step: the global step of the first batch.
    shuffle_buffer: examples in the shuffle buffer.

  Yields:
    {"views": uint8 [b, 2, S, S, 3], "index": int32 [b] (global), "label": int32 [b]}.
  """

  local = local_batch_size(batch_size)
  per_epoch = data.steps_per_epoch(batch_size)
  epoch, position = divmod(start_step, per_epoch)
  while True:
    ds = _examples(data).shuffle(
      shuffle_buffer, seed=seed * 100_003 + epoch, reshuffle_each_iteration=False
    )
    ds = ds.skip(position * local).take((per_epoch - position) * local)
    ds = crops(ds, config=config, seed=seed, epoch=epoch)
    yield from _numpy(ds.batch(local, drop_remainder=True))
    epoch, position = epoch + 1, 0


def eval_batches(data: StreamData, *, size: int, batch_size: int = 256):
  """Every example of this process's shard, in order, as its centre crop.

  Yields {"image": uint8 [b, size, size, 3], "label": int32 [b]} (the last
  batch may be smaller).
  """
  import tensorflow as tf  # noqa: PLC0415

  ds = _examples(data).map(
    lambda ex: {"image": _centre_crop(ex, size), "label": ex["label"]},
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=True,
  )
  return _numpy(ds.batch(batch_size))


def view_batches(data: StreamData, *, config: augment.AugmentConfig, seed: int,
                 batch_size: int = 256):  # fmt: skip
  """Two random crops of every example of this process's shard, in order (for the
  alignment and local separation of held-out views). Yields {"views": uint8 [b, 2,
  S, S, 3], "index": int32 [b]}; colour them with `augment.photometric_batch`."""
  import tensorflow as tf  # noqa: PLC0415

  ds = _examples(data).map(
    lambda ex: {"views": _two_crops(ex, seed, 0, config), "index": tf.cast(ex["index"], tf.int32)},
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=True,
  )
  return _numpy(ds.batch(batch_size))
