"""Dataset sources: uint8 images and int32 labels, from TFDS or embedded.

`load(name, data_dir=...)` returns a `Source` with its train and test splits in
host memory, for every dataset that fits there (all but ImageNet-100, which
streams: see `imagenet100_stream`). On several hosts, pass `process_index` and
`process_count`: each process then reads only its own shard of each split.

TFDS datasets must be prepared beforehand (`tfds build NAME --data_dir=DIR`); a
missing one raises `DatasetNotPreparedError` with the exact command. Embedded
datasets (`digits`, `shapes`, `shapes_colour`) need no network and no preparation.
"""

import dataclasses
import functools
import os

import numpy as np

from contrastive.data import embedded
from contrastive.data import objects


class DatasetNotPreparedError(FileNotFoundError):
  """A TFDS dataset is not in its data directory; the message says how to prepare it."""


@dataclasses.dataclass(frozen=True)
class Split:
  """One split: `images` uint8 [N, H, W, C], `labels` int32 [N]."""

  images: np.ndarray
  labels: np.ndarray

  def __post_init__(self):
    if self.images.dtype != np.uint8 or self.images.ndim != 4:
      raise ValueError(
        f"images must be uint8 [N, H, W, C], got {self.images.dtype} {self.images.shape}."
      )
    if self.labels.shape != (self.images.shape[0],):
      raise ValueError(f"labels must be [{self.images.shape[0]}], got {self.labels.shape}.")


@dataclasses.dataclass(frozen=True)
class Source:
  """A dataset: its name, train and test splits, number of classes, and any further
  label sets (`label_sets`: name -> (train labels, test labels, number of classes),
  e.g. `objects100`'s superclasses as "coarse")."""

  name: str
  train: Split
  test: Split
  num_classes: int
  label_sets: dict = dataclasses.field(default_factory=dict)

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train.images.shape[1:])


# Our name -> (TFDS name, train split, test split).
TFDS_DATASETS = {
  "cifar10": ("cifar10", "train", "test"),
  "cifar100": ("cifar100", "train", "test"),
  "svhn_cropped": ("svhn_cropped", "train", "test"),
  "stl10": ("stl10", "train", "test"),
  "mnist": ("mnist", "train", "test"),
}

# CMC's ImageNet-100 (Tian et al. 2019, github.com/HobbitLong/CMC, imagenet100.txt),
# the subset Wang & Liu use. Labels are positions in this tuple.
IMAGENET100_CLASSES = (
    "n02869837", "n01749939", "n02488291", "n02107142", "n13037406",
    "n02091831", "n04517823", "n04589890", "n03062245", "n01773797",
    "n01735189", "n07831146", "n07753275", "n03085013", "n04485082",
    "n02105505", "n01983481", "n02788148", "n03530642", "n04435653",
    "n02086910", "n02859443", "n13040303", "n03594734", "n02085620",
    "n02099849", "n01558993", "n04493381", "n02109047", "n04111531",
    "n02877765", "n04429376", "n02009229", "n01978455", "n02106550",
    "n01820546", "n01692333", "n07714571", "n02974003", "n02114855",
    "n03785016", "n03764736", "n03775546", "n02087046", "n07836838",
    "n04099969", "n04592741", "n03891251", "n02701002", "n03379051",
    "n02259212", "n07715103", "n03947888", "n04026417", "n02326432",
    "n03637318", "n01980166", "n02113799", "n02086240", "n03903868",
    "n02483362", "n04127249", "n02089973", "n03017168", "n02093428",
    "n02804414", "n02396427", "n04418357", "n02172182", "n01729322",
    "n02113978", "n03787032", "n02089867", "n02119022", "n03777754",
    "n04238763", "n02231487", "n03032252", "n02138441", "n02104029",
    "n03837869", "n03494278", "n04136333", "n03794056", "n03492542",
    "n02018207", "n04067472", "n03930630", "n03584829", "n02123045",
    "n04229816", "n02100583", "n03642806", "n04336792", "n03259280",
    "n02116738", "n02108089", "n03424325", "n01855672", "n02090622",
)  # fmt: skip


def _objects(name):
  def load(seed=0):
    train, test, num_classes, (train_extra, test_extra) = objects.load(name, seed)
    extra = ("coarse", 20) if name == "objects100" else ("fine", 50)
    return train, test, num_classes, {extra[0]: (train_extra, test_extra, extra[1])}

  return load


# name -> loader(seed) returning (train, test, num_classes[, label_sets]).
EMBEDDED_DATASETS = {
  "digits": embedded.digits,
  "shapes": embedded.shapes,
  "shapes_colour": embedded.shapes_colour,
  "objects": _objects("objects"),
  "objects100": _objects("objects100"),
}

STREAMING_DATASETS = ("imagenet100",)
# Generated as vectors, not images (`data.latent`): prepared by `datasets.prepare`.
VECTOR_DATASETS = ("latent",)


@functools.lru_cache(maxsize=4)
def _embedded(name: str, seed: int):
  """`EMBEDDED_DATASETS[name](seed)`, kept for the process with its arrays read-only: the
  generators are deterministic, and regenerating `shapes` took 1.8-2.0 s at every load (a
  sweep's runs, a notebook's, the tests')."""
  out = EMBEDDED_DATASETS[name](seed=seed)

  def freeze(x):
    if isinstance(x, np.ndarray):
      x.setflags(write=False)
    elif isinstance(x, (tuple, list)):
      for item in x:
        freeze(item)
    elif isinstance(x, dict):
      for item in x.values():
        freeze(item)

  freeze(out)
  return out


def names() -> tuple[str, ...]:
  """Every dataset name a run accepts: `load`'s, the streamed and the vector ones."""
  return tuple(TFDS_DATASETS) + tuple(EMBEDDED_DATASETS) + STREAMING_DATASETS + VECTOR_DATASETS


def _tfds():
  """Imports TFDS (and TensorFlow) on first use, keeping TF off the accelerator."""
  import tensorflow as tf  # noqa: PLC0415
  import tensorflow_datasets as tfds  # noqa: PLC0415

  tf.config.set_visible_devices([], "GPU")  # TF only reads data; JAX owns the GPU.
  return tfds


def prepare_command(tfds_name: str, data_dir: str) -> str:
  """The shell command that prepares `tfds_name` in `data_dir`."""
  if tfds_name == "imagenet2012":
    return (
      f"put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in "
      f"{data_dir}/downloads/manual, then run: tfds build imagenet2012 "
      f"--data_dir={data_dir}"
    )
  return f"tfds build {tfds_name} --data_dir={data_dir}"


def process_split(split: str, process_index: int, process_count: int) -> str:
  """This process's equal, disjoint share of a TFDS split (the remainder dropped)."""
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index must be in [0, {process_count}), got {process_index}.")
  if process_count == 1:
    return split
  return _tfds().even_splits(split, n=process_count, drop_remainder=True)[process_index]


def tfds_split(tfds_name, split, *, data_dir=None, process_index=0, process_count=1, **kw):
  """A `tf.data.Dataset` of one TFDS split (this process's shard of it).

  Raises:
    DatasetNotPreparedError: the dataset is not prepared in `data_dir`; the
      one-line message names it, the directory, and the command to prepare it.
  """
  tfds = _tfds()
  builder = tfds.builder(tfds_name, data_dir=data_dir)
  split = process_split(split, process_index, process_count)
  try:
    return builder, builder.as_dataset(split=split, **kw)
  except AssertionError as e:
    if "could not find data" not in str(e):
      raise
    root = os.path.dirname(os.path.dirname(builder.data_dir))
    raise DatasetNotPreparedError(
      f"Dataset '{tfds_name}' is not prepared in {root}; to prepare it, "
      f"{prepare_command(tfds_name, root)}"
    ) from None


def held_out(n: int, fraction: float) -> int:
  """How many of n training examples a holdout fraction keeps out (at least one)."""
  return max(1, round(n * fraction))


def _load_tfds(
  name, *, data_dir, process_index, process_count, train_examples, holdout_fraction
) -> Source:
  tfds = _tfds()
  tfds_name, train_split, test_split = TFDS_DATASETS[name]
  if holdout_fraction:  # the held-out examples: the last of the (first N) training ones
    if train_examples:
      start, end = train_examples - held_out(train_examples, holdout_fraction), train_examples
    else:
      start, end = f"{round(100 * (1 - holdout_fraction))}%", ""
    train_split, test_split = f"{train_split}[:{start}]", f"{train_split}[{start}:{end}]"
  elif train_examples:
    train_split = f"{train_split}[:{train_examples}]"
  splits = []
  for split in (train_split, test_split):
    builder, ds = tfds_split(
      tfds_name, split, data_dir=data_dir, process_index=process_index, process_count=process_count
    )
    # Batches of 10,000 concatenated, not batch_size=-1: TF 2.21 aborts the process
    # (std::length_error) on batch_size=-1 over TFDS's mock data.
    batches = list(tfds.as_numpy(ds.batch(10_000)))
    splits.append(
      Split(
        np.concatenate([b["image"] for b in batches]).astype(np.uint8),
        np.concatenate([b["label"] for b in batches]).astype(np.int32),
      )
    )
  return Source(name, splits[0], splits[1], builder.info.features["label"].num_classes)


def load(
  name: str,
  *,
  data_dir=None,
  seed: int = 0,
  process_index: int = 0,
  process_count: int = 1,
  train_examples: int = 0,
  holdout_fraction: float = 0.0,
) -> Source:
  """Loads an in-memory dataset by name.

  Args:
    name: one of `TFDS_DATASETS` or `EMBEDDED_DATASETS` (see `names()`).
    data_dir: TFDS data directory (default: TFDS's, `$TFDS_DATA_DIR` or
      ~/tensorflow_datasets). Ignored by embedded datasets.
    seed: generation seed of the procedural `shapes` dataset.
    process_index, process_count: this process's shard of each split.
    train_examples: use only the first N training examples (0 = all), taken before
      sharding, so every process count sees the same examples.
    holdout_fraction: f > 0 holds the last fraction f of those training examples out
      as the evaluation split, in place of the test split (a validation split for
      choosing hyperparameters without the test set); they are not trained on. TFDS
      datasets without `train_examples` take it in whole percents.

  Returns:
    The `Source`, arrays in TFDS order (shuffling happens in the pipeline).
  """
  if name in EMBEDDED_DATASETS:
    train, test, num_classes, *label_sets = _embedded(name, seed)
    label_sets = label_sets[0] if label_sets else {}
    n = train_examples or len(train[1])
    train = (train[0][:n], train[1][:n])
    label_sets = {k: (tr[:n], te, c) for k, (tr, te, c) in label_sets.items()}
    if holdout_fraction:
      h = n - held_out(n, holdout_fraction)
      train, test = (train[0][:h], train[1][:h]), (train[0][h:], train[1][h:])
      label_sets = {k: (tr[:h], tr[h:], c) for k, (tr, _, c) in label_sets.items()}
    if process_count > 1:
      train = _shard(train, process_index, process_count)
      test = _shard(test, process_index, process_count)
      label_sets = {
        k: (_shard(tr, process_index, process_count), _shard(te, process_index, process_count), c)
        for k, (tr, te, c) in label_sets.items()
      }
    return Source(name, Split(*train), Split(*test), num_classes, label_sets)
  if name in TFDS_DATASETS:
    return _load_tfds(
      name,
      data_dir=data_dir,
      process_index=process_index,
      process_count=process_count,
      train_examples=train_examples,
      holdout_fraction=holdout_fraction,
    )
  if name in STREAMING_DATASETS:
    raise ValueError(f"Dataset {name!r} does not fit in memory; use imagenet100_stream.")
  raise ValueError(f"Unknown dataset {name!r}; valid: {', '.join(names())}.")


def _shard(arrays, index: int, count: int):
  """This process's equal share of a tuple of arrays (or of one array)."""
  if not isinstance(arrays, tuple):
    return _shard((arrays,), index, count)[0]
  per = len(arrays[0]) // count
  return tuple(a[index * per : (index + 1) * per] for a in arrays)


def imagenet100_stream(
  split: str, *, data_dir=None, process_index: int = 0, process_count: int = 1, decode=True
):
  """ImageNet-100 as a `tf.data.Dataset` of {"image": uint8 [H, W, 3], "label": int32}.

  Filters TFDS `imagenet2012` to `IMAGENET100_CLASSES` and relabels to their
  positions. The order is fixed (files are read in order, one after another), so
  an example's position in this process's stream is its identity across epochs:
  `streaming` numbers examples by it (the memory bank's rows) and shuffles with a
  buffer, per epoch. Crops and colour are the caller's (`streaming`: crops on the
  host, colour on the device).

  Args:
    split: "train" or "validation" (TFDS's names).
    data_dir: TFDS data directory holding a prepared `imagenet2012`.
    process_index, process_count: this process's shard.
    decode: False keeps "image" as the encoded JPEG bytes (a string), for
      counting, shuffling and skipping without decoding (`tf.io.decode_image`).
  """
  import tensorflow as tf  # noqa: PLC0415

  tfds = _tfds()
  builder, ds = tfds_split(
    "imagenet2012",
    split,
    data_dir=data_dir,
    shuffle_files=False,
    decoders=None if decode else {"image": tfds.decode.SkipDecoding()},
    process_index=process_index,
    process_count=process_count,
  )
  label_feature = builder.info.features["label"]
  table = np.full(label_feature.num_classes, -1, np.int32)
  for i, wnid in enumerate(IMAGENET100_CLASSES):
    table[label_feature.str2int(wnid)] = i
  table = tf.constant(table)

  def relabel(example):
    return {"image": example["image"], "label": tf.gather(table, example["label"])}

  return ds.map(relabel).filter(lambda ex: ex["label"] >= 0)
