"""On-device batches: reproducible order, whole epochs, one compilation."""

import chex
import jax
import numpy as np
import pytest

from contrastive.data import augment
from contrastive.data import pipeline
from contrastive.data import sources


def test_each_epoch_visits_every_example_once_in_a_seeded_order():
  n, b = 103, 10  # 10 steps per epoch, 3 examples dropped each epoch
  epoch0 = np.concatenate(
    [pipeline.batch_indices(7, s, num_examples=n, batch_size=b) for s in range(10)]
  )
  epoch1 = np.concatenate(
    [pipeline.batch_indices(7, s, num_examples=n, batch_size=b) for s in range(10, 20)]
  )
  assert len(set(epoch0.tolist())) == 100 and len(set(epoch1.tolist())) == 100
  assert not np.array_equal(epoch0, epoch1)
  again = np.concatenate(
    [pipeline.batch_indices(7, s, num_examples=n, batch_size=b) for s in range(10)]
  )
  np.testing.assert_array_equal(epoch0, again)
  other = pipeline.batch_indices(8, 0, num_examples=n, batch_size=b)
  assert not np.array_equal(epoch0[:10], other)


def test_the_shuffle_is_a_permutation_unrelated_across_epochs():
  """The Feistel shuffle is a bijection on [0, n) for every n (odd bit counts, n just
  above a power of 4, where cycle-walking does the most), and its orders look random:
  no correlation with the position, between epochs or between seeds."""
  for n in (1, 2, 3, 5, 17, 103, 1025, 4097, 10240, 50000):
    order = np.asarray(pipeline.shuffled_positions(3, 0, np.arange(n), n))
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
  n = 10240
  a, b, c = (np.asarray(pipeline.shuffled_positions(s, e, np.arange(n), n))
             for s, e in ((3, 0), (3, 1), (4, 0)))  # fmt: skip
  for x, y in ((a, np.arange(n)), (a, b), (a, c)):
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.05  # 5 standard errors of a random pair
  # consecutive positions land far apart: no runs of neighbours in a batch
  assert np.median(np.abs(np.diff(a))) > n / 8


def test_batch_size_larger_than_the_dataset_is_rejected():
  with pytest.raises(ValueError, match="batch_size must be in \\[1, 50\\]"):
    pipeline.batch_indices(0, 0, num_examples=50, batch_size=64)


def test_train_batch_matches_host_gather_and_compiles_once():
  src = sources.load("digits")
  data = pipeline.to_device(src.train)
  config = augment.preset("randbit", 28)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step_batch(data, key, step):
    return pipeline.train_batch(data, key, step, seed=3, batch_size=32, config=config)

  for step in (0, 5, 46, 47, 200):  # 46 steps per epoch: crosses epochs
    batch = step_batch(data, jax.random.key(1), step)
    idx = np.asarray(batch["index"])
    np.testing.assert_array_equal(batch["label"], src.train.labels[idx])
    want1, want2 = augment.augment_batch(
      jax.random.fold_in(jax.random.key(1), step), src.train.images[idx], config, idx
    )
    # Same computation; jitted (fused) vs op-by-op rounding differs by ~1e-6.
    np.testing.assert_allclose(batch["view1"], want1, atol=1e-5)
    np.testing.assert_allclose(batch["view2"], want2, atol=1e-5)


def test_photometric_batch_uses_the_keys_of_augment():
  # With an identity geometric step (whole-image crop, no flip), colouring host views
  # on the device must give exactly augment_batch's views.
  import dataclasses

  config = dataclasses.replace(
    augment.preset("simclr_imagenet", 32),
    crop_scale=(1.0, 1.0),
    crop_ratio=(1.0, 1.0),
    flip_prob=0.0,
  )
  images = (np.random.default_rng(0).random((5, 32, 32, 3)) * 255).astype(np.uint8)
  idx = np.arange(10, 15)
  want1, want2 = augment.augment_batch(jax.random.key(3), images, config, idx)
  got1, got2 = augment.photometric_batch(
    jax.random.key(3), np.stack([images, images], 1), config, idx
  )
  np.testing.assert_allclose(got1, want1, atol=1e-5)
  np.testing.assert_allclose(got2, want2, atol=1e-5)
