"""Dataset sources: TFDS under mock_data, the missing-dataset error, embedded data."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from contrastive.data import embedded
from contrastive.data import sources

# Our name -> (image shape, number of classes) as TFDS describes them.
EXPECTED = {
  "cifar10": ((32, 32, 3), 10),
  "cifar100": ((32, 32, 3), 100),
  "svhn_cropped": ((32, 32, 3), 10),
  "stl10": ((96, 96, 3), 10),
  "mnist": ((28, 28, 1), 10),
}


@pytest.mark.parametrize("name", sorted(sources.TFDS_DATASETS))
def test_tfds_sources_under_mock_data(name, tmp_path, monkeypatch):
  with tfds.testing.mock_data(num_examples=24):
    source = sources.load(name, data_dir=str(tmp_path))
  shape, num_classes = EXPECTED[name]
  assert source.num_classes == num_classes and source.image_shape == shape
  for split in (source.train, source.test):
    assert split.images.dtype == np.uint8 and split.images.shape == (24,) + shape
    assert split.labels.dtype == np.int32
    assert split.labels.min() >= 0 and split.labels.max() < num_classes
  # A held-out split is read from the train split's last examples (TFDS slices; mock
  # data makes up each slice's examples, so only the slicing is checked here).
  splits, real = [], sources.tfds_split

  def recorded(tfds_name, split, **kw):
    splits.append(split)
    return real(tfds_name, split, **kw)

  monkeypatch.setattr(sources, "tfds_split", recorded)
  with tfds.testing.mock_data(num_examples=24):
    held = sources.load(name, data_dir=str(tmp_path), train_examples=20, holdout_fraction=0.25)
  train_split = sources.TFDS_DATASETS[name][1]
  assert splits == [f"{train_split}[:15]", f"{train_split}[15:20]"] and len(held.test.labels)
  with tfds.testing.mock_data(num_examples=24):
    sources.load(name, data_dir=str(tmp_path), holdout_fraction=0.1)
  assert splits[-2:] == [f"{train_split}[:90%]", f"{train_split}[90%:]"]


def test_process_shards_are_disjoint_and_cover_the_split():
  # Mock data ignores sub-splits, so the split arithmetic is checked with TFDS's own
  # resolution against a real size.
  from tensorflow_datasets.core import splits as tfds_splits

  info = {"train": tfds_splits.SplitInfo(name="train", shard_lengths=[50_000], num_bytes=0)}
  ranges = []
  for i in range(3):
    spec = sources.process_split("train", i, 3)
    (absolute,) = tfds.core.ReadInstruction.from_spec(spec).to_absolute(info)
    ranges.append((absolute.from_ or 0, absolute.to))  # None means from the start
  assert ranges == [(0, 16666), (16666, 33332), (33332, 49998)]
  assert sources.process_split("train", 0, 1) == "train"
  with pytest.raises(ValueError, match="process_index"):
    sources.process_split("train", 3, 3)


def test_embedded_process_shards_partition_the_split():
  whole = sources.load("digits")
  shards = [sources.load("digits", process_index=i, process_count=3) for i in range(3)]
  assert [len(s.train.labels) for s in shards] == [499, 499, 499]
  np.testing.assert_array_equal(
    np.concatenate([s.train.labels for s in shards]), whole.train.labels[:1497]
  )


def test_unprepared_dataset_names_itself_the_directory_and_the_command(tmp_path):
  with pytest.raises(sources.DatasetNotPreparedError) as err:
    sources.load("cifar10", data_dir=str(tmp_path))
  message = str(err.value)
  assert "\n" not in message
  assert "'cifar10'" in message and str(tmp_path) in message
  assert f"tfds build cifar10 --data_dir={tmp_path}" in message
  with pytest.raises(sources.DatasetNotPreparedError, match="downloads/manual"):
    sources.imagenet100_stream("train", data_dir=str(tmp_path))


def test_unknown_dataset_lists_the_valid_ones():
  with pytest.raises(ValueError, match="cifar10, cifar100.*digits, shapes"):
    sources.load("cifar-10")


def test_imagenet100_keeps_the_100_classes_relabelled(tmp_path):
  assert len(set(sources.IMAGENET100_CLASSES)) == 100
  with tfds.testing.mock_data(num_examples=400):
    ds = sources.imagenet100_stream("train", data_dir=str(tmp_path))
    labels = [int(ex["label"]) for ex in tfds.as_numpy(ds)]
    # A fixed order (positions are identities), images left encoded on request.
    encoded = list(tfds.as_numpy(sources.imagenet100_stream("train", data_dir=str(tmp_path),
                                                             decode=False)))  # fmt: skip
    builder = tfds.builder("imagenet2012", data_dir=str(tmp_path))
    names = builder.info.features["label"].names
  assert 0 < len(labels) < 400 and all(0 <= x < 100 for x in labels)
  assert [int(ex["label"]) for ex in encoded] == labels
  assert isinstance(encoded[0]["image"], bytes)
  kept = [names.index(w) for w in sources.IMAGENET100_CLASSES]
  assert len(kept) == 100


def test_embedded_datasets_are_deterministic_and_offline():
  # In a subprocess with every socket refused: no network is touched.
  code = (
    "import socket\n"
    "def no(*a, **k): raise OSError('network used')\n"
    "socket.socket.connect = no\nsocket.create_connection = no\n"
    "from contrastive.data import sources\n"
    "import hashlib\n"
    "for n in ('digits', 'shapes'):\n"
    "  s = sources.load(n, seed=5)\n"
    "  h = hashlib.sha256(s.train.images.tobytes() + s.test.labels.tobytes()).hexdigest()\n"
    "  print(n, s.train.images.shape, s.test.images.shape, s.num_classes, h)\n"
  )
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  runs = [
    subprocess.run(
      [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300
    )
    for _ in range(2)
  ]
  assert runs[0].returncode == 0, runs[0].stderr
  assert runs[0].stdout == runs[1].stdout
  lines = runs[0].stdout.splitlines()
  assert lines[0].startswith("digits (1497, 28, 28, 1) (300, 28, 28, 1) 10")
  assert lines[1].startswith("shapes (10000, 32, 32, 3) (2000, 32, 32, 3) 10")


def test_digits_are_scikit_learns_read_without_importing_it(monkeypatch):
  # embedded.digits_arrays reads the CSV scikit-learn ships (its import costs 0.5-0.8 s);
  # the arrays are load_digits' own, and where the file is not found, load_digits gives them.
  from sklearn import datasets  # noqa: PLC0415

  bunch = datasets.load_digits()
  for found in (True, False):
    with monkeypatch.context() as m:
      if not found:
        m.setattr(importlib.util, "find_spec", lambda name: None)
      images, labels = embedded.digits_arrays()
    assert images.dtype == bunch.images.dtype and np.array_equal(images, bunch.images)
    assert labels.dtype == bunch.target.dtype and np.array_equal(labels, bunch.target)


def test_shapes_seed_changes_the_data_and_classes_are_balanced():
  a = sources.load("shapes", seed=0)
  b = sources.load("shapes", seed=1)
  assert not np.array_equal(a.train.images[:10], b.train.images[:10])
  counts = np.bincount(a.train.labels, minlength=10)
  assert counts.min() > 850 and counts.max() < 1150


def test_a_held_out_split_replaces_the_test_split_and_is_not_trained_on():
  whole = sources.load("digits", train_examples=600)
  held = sources.load("digits", train_examples=600, holdout_fraction=0.2)
  np.testing.assert_array_equal(held.train.images, whole.train.images[:480])
  np.testing.assert_array_equal(held.test.images, whole.train.images[480:600])
  np.testing.assert_array_equal(held.test.labels, whole.train.labels[480:600])
  every = sources.load("digits", holdout_fraction=0.1)  # the last tenth of all of them
  n = len(sources.load("digits").train.labels)
  assert len(every.test.labels) == round(0.1 * n) and len(every.train.labels) == n - round(0.1 * n)
  # Two processes shard the same held-out split.
  shards = [sources.load("digits", holdout_fraction=0.1, process_index=i, process_count=2)
            for i in range(2)]  # fmt: skip
  assert sum(len(s.test.labels) for s in shards) == len(every.test.labels)
