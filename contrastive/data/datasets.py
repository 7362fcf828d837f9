"""A run's data, ready for training and evaluation: `prepare(config.data, ...)`.

One place decides what a run trains and is evaluated on: the source's splits,
feature suppression applied to them (RandBit bits kept beside the images, digits
pasted on the images), both splits put on the device, the model's input shape, and
the extra label sets the learned features are probed for (`probes`: the pasted
digit for digits on images). The trainer and the evaluation read only this.
"""

import dataclasses

import jax
from jax.experimental import multihost_utils
import numpy as np

from contrastive.data import latent
from contrastive.data import pipeline
from contrastive.data import sources
from contrastive.data import streaming
from contrastive.data import suppression


@dataclasses.dataclass(frozen=True)
class Probe:
  """A label set the features are probed for besides the classes (kNN and linear)."""

  train_labels: np.ndarray  # int32 [num_train]
  test_labels: np.ndarray  # int32 [num_test]
  num_classes: int


@dataclasses.dataclass(frozen=True)
class RunData:
  """Both splits (on the device, or streamed from disk), the model's input shape,
  classes and extra probes."""

  name: str
  train: pipeline.DeviceData | streaming.StreamData | latent.LatentData
  test: pipeline.DeviceData | streaming.StreamData | latent.LatentData
  # The model's input: [H, W, C (+ RandBit bits)], or [D (+ bits)] for vectors.
  image_shape: tuple[int, ...]
  num_classes: int
  probes: dict[str, Probe]  # results gain {name}_knn_accuracy and {name}_linear_accuracy
  # The true latents of the instances, (train, test) [N, d], where the data has them
  # (the latent test-bed): results gain how much of them the features recover.
  latents: tuple | None = None


def _global(labels: np.ndarray, mesh) -> np.ndarray:
  """Every process's labels of a split, in the order of its rows on the mesh.

  `pipeline.to_device` keeps, of each process's shard, a multiple of its device
  count and lays the shards out in process order; the labels follow suit.
  """
  if jax.process_count() == 1:
    return labels
  rows = len(labels) // mesh.local_mesh.size * mesh.local_mesh.size
  return np.asarray(multihost_utils.process_allgather(labels[:rows], tiled=True))


def prepare(cfg, *, mesh) -> RunData:
  """The data a run with data config `cfg` trains and is evaluated on.

  Args:
    cfg: the config's data section (`cfg.seed` generates the procedural datasets
      and draws the pasted digits).
    mesh: the run's ('data',) mesh; on several processes each reads its shard.
  """
  if cfg.name in sources.STREAMING_DATASETS:
    return _streamed(cfg)
  if cfg.name in sources.VECTOR_DATASETS:
    return _latent(cfg, mesh)
  seed = cfg.seed
  source = sources.load(
    cfg.name,
    data_dir=cfg.data_dir or None,
    seed=seed,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    train_examples=cfg.train_examples,
    holdout_fraction=cfg.get("holdout_fraction", 0.0),
  )
  probes = {
    name: Probe(_global(train, mesh), _global(test, mesh), num_classes)
    for name, (train, test, num_classes) in source.label_sets.items()
  }
  if cfg.digits_pool:
    (train, test), (digit_train, digit_test) = suppression.paste_digits_on_splits(
      (source.train.images, source.train.labels),
      (source.test.images, source.test.labels),
      pool_size=cfg.digits_pool,
      seed=seed,
      digit_size=cfg.digits_size or None,
    )
    source = dataclasses.replace(source, train=sources.Split(*train), test=sources.Split(*test))
    probes["digit"] = Probe(digit_train, digit_test, num_classes=10)
  height, width, channels = source.image_shape
  return RunData(
    name=cfg.name,
    train=pipeline.to_device(source.train, randbit_bits=cfg.randbit_bits, mesh=mesh),
    test=pipeline.to_device(source.test, randbit_bits=cfg.randbit_bits, mesh=mesh),
    image_shape=(height, width, channels + cfg.randbit_bits),
    num_classes=source.num_classes,
    probes=probes,
  )


def _streamed(cfg) -> RunData:
  """A dataset read from disk as it trains (`streaming`): train and validation splits."""
  train = streaming.open_split(cfg.name, "train", data_dir=cfg.data_dir or None)
  test = streaming.open_split(cfg.name, "validation", data_dir=cfg.data_dir or None)
  size = cfg.image_size
  return RunData(cfg.name, train, test, (size, size, 3), train.num_classes, probes={})


def _latent(cfg, mesh) -> RunData:
  """The latent test-bed (`data.latent`): both splits generated from cfg.seed, on the
  device; the superclasses (and the competing factor's values) as probes."""
  made = latent.generate(cfg)
  train, test = made["train"], made["test"]
  probes = {"superclass": Probe(train["coarse"], test["coarse"], cfg.latent_superclasses)}
  if cfg.digits_pool:
    probes["digit"] = Probe(train["factor_labels"], test["factor_labels"], cfg.digits_pool)
  return RunData(
    name=cfg.name,
    train=latent.to_device(train, made["weights"], cfg, mesh=mesh),
    test=latent.to_device(test, made["weights"], cfg, mesh=mesh),
    image_shape=latent.input_shape(cfg),
    num_classes=made["num_classes"],
    probes=probes,
    latents=(train["content"], test["content"]),
  )


def clean_inputs(split, n: int | None = None):
  """The first `n` (default all) examples of a device-held split as the model reads
  them without augmentation: float images, or the latent test-bed's observations."""
  n = split.num_examples if n is None else n
  if isinstance(split, latent.LatentData):
    return latent.observations(split)[:n]
  return pipeline.eval_images(split, 0, n)
