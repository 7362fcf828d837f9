"""Datasets on the accelerator: batches gathered and augmented inside the jitted step.

Datasets that fit (CIFAR-sized and the embedded ones) are put on the device once,
as uint8. Each training step picks its batch by index, gathers it and augments it
on the device: no host round trip per step, and no CPU augmentation pipeline for
the accelerator to wait on.

The order of examples is a pure function of (seed, epoch): `batch_indices(seed,
step)` is the same on every run, so a run resumed at step s sees exactly the
batches an uninterrupted run would, and the data position needs no state beyond
the step. Each epoch drops the last partial batch (as SimCLR and NPID do).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from contrastive.data import augment
from contrastive.data import sources
from contrastive.data import suppression


@dataclasses.dataclass(frozen=True)
class DeviceData:
  """One split on the device(s).

  Attributes:
    images: uint8 [M, H, W, C], M >= num_examples (rows past num_examples pad the
      array to a multiple of the device count and are never drawn).
    labels: int32 [M].
    bits: uint8 [M, n] RandBit bits appended after augmentation, or None.
    num_examples: the number of real examples (static).
  """

  images: jax.Array
  labels: jax.Array
  bits: jax.Array | None = None
  num_examples: int = 0


jax.tree_util.register_dataclass(
  DeviceData, data_fields=["images", "labels", "bits"], meta_fields=["num_examples"]
)


def to_device(split: sources.Split, *, randbit_bits: int = 0, mesh=None) -> DeviceData:
  """Puts a split on the device(s).

  Without a mesh: on the default device. With a ('data',) mesh: as one global
  array whose rows are sharded over every device of every process, built from this
  process's rows (`split` is this process's shard, see `sources.load`); batches
  then gather rows by global index, so the order, the memory bank and the loss are
  those of a single process. One process pads its rows to a multiple of its
  device count; with several processes each shard is cut to such a multiple
  (equal shards, so equally in every process).

  Args:
    split: host arrays (this process's shard).
    randbit_bits: if > 0, computes each image's RandBit bits
      (`suppression.randbit_codes`) and keeps them beside the images.
    mesh: a 1-D ('data',) mesh, or None.
  """
  bits = suppression.randbit_codes(split.images, randbit_bits) if randbit_bits else None
  arrays = {"images": split.images, "labels": split.labels, "bits": bits}
  n = len(split.labels)
  if mesh is None:
    put = {k: None if v is None else jax.device_put(v) for k, v in arrays.items()}
    return DeviceData(num_examples=n, **put)
  local_devices = mesh.local_mesh.size
  processes = jax.process_count()
  if processes == 1:
    rows = -(-n // local_devices) * local_devices
    arrays = {
      k: None if v is None else np.concatenate([v, np.zeros((rows - n,) + v.shape[1:], v.dtype)])
      for k, v in arrays.items()
    }
    num_examples = n
  else:
    rows = n // local_devices * local_devices
    arrays = {k: None if v is None else v[:rows] for k, v in arrays.items()}
    num_examples = rows * processes
  sharding = NamedSharding(mesh, P("data"))
  put = {
    k: None
    if v is None
    else jax.make_array_from_process_local_data(sharding, v, (rows * processes,) + v.shape[1:])
    for k, v in arrays.items()
  }
  return DeviceData(num_examples=num_examples, **put)


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  if not 0 < batch_size <= num_examples:
    raise ValueError(
      f"batch_size must be in [1, {num_examples}] (the dataset's size), got {batch_size}."
    )
  return num_examples // batch_size


FEISTEL_ROUNDS = 6


def _mix(x, key):
  """A 32-bit mixing function (murmur3's finaliser) of x ^ key: Feistel's round function."""
  x = x ^ key
  x = (x ^ (x >> 16)) * jnp.uint32(0x85EBCA6B)
  x = (x ^ (x >> 13)) * jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)


def shuffled_positions(seed: int, epoch, positions, num_examples: int) -> jax.Array:
  """Where `positions` (int [B]) of `epoch`'s order point in the dataset: a seeded
  pseudo-random permutation of [0, num_examples) evaluated at those positions only.

  A balanced Feistel network on the smallest even number of bits covering the
  dataset, keyed by (seed, epoch), with cycle-walking to stay inside it (the method
  of `tf.random.experimental.index_shuffle`): O(batch) work per step, where
  `jax.random.permutation` sorts the whole dataset every step (5 ms at 10,240
  examples, 22 ms at 50,000 on a CPU core).
  """
  bits = max(2, (num_examples - 1).bit_length())
  bits += bits % 2
  half = bits // 2
  low = jnp.uint32((1 << half) - 1)
  keys = jax.random.bits(jax.random.fold_in(jax.random.key(seed), epoch), (FEISTEL_ROUNDS,))

  def permute(x):
    left, right = x >> half, x & low
    for r in range(FEISTEL_ROUNDS):
      left, right = right, left ^ (_mix(right, keys[r]) & low)
    return (left << half) | right

  def walk(x):  # a position outside the dataset moves on along its cycle
    return jnp.where(x < num_examples, x, permute(x))

  x = permute(jnp.asarray(positions, jnp.uint32))
  x = jax.lax.while_loop(lambda x: jnp.any(x >= num_examples), walk, x)
  return x.astype(jnp.int32)


def batch_indices(seed: int, step, *, num_examples: int, batch_size: int) -> jax.Array:
  """Dataset indices of the batch of global `step` (may be traced): int32 [batch_size].
  Each epoch visits every example at most once (the last partial batch is dropped)."""
  per_epoch = steps_per_epoch(num_examples, batch_size)
  epoch, position = jnp.divmod(step, per_epoch)
  positions = position * batch_size + jnp.arange(batch_size)
  return shuffled_positions(seed, epoch, positions, num_examples)


def train_batch(
  data: DeviceData, key, step, *, seed: int, batch_size: int, config: augment.AugmentConfig
) -> dict:
  """The augmented training batch of `step`, built on the device.

  Args:
    data: the training split on the device.
    key: the run's augmentation key; step `step` uses fold_in(key, step) and each
      image fold_in of that with its dataset index.
    step: global step (may be traced).
    seed: data-order seed.
    batch_size: images per batch (two views each).
    config: the augmentation recipe.

  Returns:
    {"view1", "view2": float32 [B, S, S, C(+bits)], "index": int32 [B],
     "label": int32 [B]}. RandBit bits are appended to both views after
    augmentation, so they are never cropped, flipped or jittered.
  """
  idx = batch_indices(seed, step, num_examples=data.num_examples, batch_size=batch_size)
  v1, v2 = augment.augment_batch(jax.random.fold_in(key, step), data.images[idx], config, idx)
  if data.bits is not None:
    bits = data.bits[idx]
    v1, v2 = suppression.append_bits(v1, bits), suppression.append_bits(v2, bits)
  return {"view1": v1, "view2": v2, "index": idx, "label": data.labels[idx]}


def eval_images(data: DeviceData, start: int, size: int) -> jax.Array:
  """Clean float32 images [size, H, W, C(+bits)] from `start`, for feature extraction.

  At evaluation, RandBit bits are appended to the un-augmented image.
  """
  images = augment.to_float(jax.lax.dynamic_slice_in_dim(data.images, start, size))
  if data.bits is not None:
    images = suppression.append_bits(images, jax.lax.dynamic_slice_in_dim(data.bits, start, size))
  return images


@functools.partial(jax.jit, static_argnames="config")
def eval_views(data: DeviceData, key, config: augment.AugmentConfig):
  """Two augmented views of every example of `data`, for representation metrics.

  Image i's views use fold_in(key, i); RandBit bits are appended after
  augmentation, as in training. Returns 2 x float32 [num_examples, S, S, C(+bits)].
  One compiled program (op by op, the quickstart's 2,000 test images took 7.9 s of
  its 14 s evaluation on 2 CPU cores).
  """
  n = data.num_examples
  v1, v2 = augment.augment_batch(key, data.images[:n], config)
  if data.bits is not None:
    bits = data.bits[:n]
    v1, v2 = suppression.append_bits(v1, bits), suppression.append_bits(v2, bits)
  return v1, v2
