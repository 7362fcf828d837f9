"""Feature suppression: RandBit, digits on images, MultiDigits."""

import jax
import numpy as np
import pytest
from scipy import stats

from contrastive.data import augment
from contrastive.data import pipeline
from contrastive.data import sources
from contrastive.data import suppression


@pytest.fixture(scope="module")
def shapes():
  return sources.load("shapes", seed=0)


def test_randbit_is_a_deterministic_function_of_the_image(shapes):
  images = shapes.train.images[:500]
  a = suppression.randbit_codes(images, 20)
  b = suppression.randbit_codes(images.copy(), 20)
  np.testing.assert_array_equal(a, b)
  assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
  # Changing one pixel changes the image's code (with overwhelming probability).
  changed = images.copy()
  changed[:, 0, 0, 0] ^= 1
  assert np.mean(np.any(suppression.randbit_codes(changed, 20) != a, axis=1)) > 0.99
  # Fewer bits are the low bits of the same bucket.
  np.testing.assert_array_equal(suppression.randbit_codes(images, 5), a[:, :5])


def test_each_randbit_bit_is_one_half_the_time(shapes):
  bits = suppression.randbit_codes(shapes.train.images[:4000], 20)
  ones = bits.sum(axis=0)
  expected = np.full((2, 20), 2000.0)
  chi2, p = stats.chisquare(np.stack([ones, 4000 - ones]), expected, axis=0)
  # 20 tests: Bonferroni at overall level 0.001.
  assert np.all(p > 0.001 / 20), (ones, p)


def test_randbit_bits_are_the_same_in_every_epoch_and_view_and_never_augmented(shapes):
  split = sources.Split(shapes.train.images[:64], shapes.train.labels[:64])
  data = pipeline.to_device(split, randbit_bits=10)
  config = augment.preset("simclr_cifar", 32)
  batch = jax.jit(pipeline.train_batch, static_argnames=("seed", "batch_size", "config"))
  codes = suppression.randbit_codes(split.images, 10)
  for step in (0, 1, 4, 9):  # steps 0-3 are epoch 0, later steps later epochs
    b = batch(data, jax.random.key(0), step, seed=1, batch_size=16, config=config)
    want = codes[np.asarray(b["index"])].astype(np.float32)
    for view in ("view1", "view2"):
      planes = np.asarray(b[view])[..., 3:]
      assert planes.shape == (16, 32, 32, 10)
      # Constant over the image (not cropped, flipped or jittered) and equal to the code.
      np.testing.assert_array_equal(planes, np.broadcast_to(want[:, None, None, :], planes.shape))
  clean = pipeline.eval_images(data, 0, 8)
  np.testing.assert_array_equal(np.asarray(clean)[:, 5, 7, 3:], codes[:8])
  np.testing.assert_allclose(np.asarray(clean)[..., :3], split.images[:8] / 255.0, atol=1e-7)


def test_digits_on_images_paste_by_pixelwise_max(shapes):
  digits = sources.load("digits")
  base = shapes.train.images[:50]
  out, labels, cells = suppression.digits_on_images(
    base, digits.train.images, digits.train.labels, pool_size=4, seed=0, digit_size=10
  )
  assert out.shape == base.shape and out.dtype == np.uint8
  assert np.all(out >= base)  # max never darkens
  pool_labels = set(digits.train.labels[:4].tolist())
  assert set(labels.tolist()) <= pool_labels and len(set(cells.tolist())) > 3
  for i in range(5):
    top = int(suppression.GRID_OFFSETS[cells[i] // 3] * 32)
    left = int(suppression.GRID_OFFSETS[cells[i] % 3] * 32)
    top, left = min(top, 22), min(left, 22)
    outside = np.ones((32, 32), bool)
    outside[top : top + 10, left : left + 10] = False
    np.testing.assert_array_equal(out[i][outside], base[i][outside])
  again, _, _ = suppression.digits_on_images(
    base, digits.train.images, digits.train.labels, pool_size=4, seed=0, digit_size=10
  )
  np.testing.assert_array_equal(out, again)
  with pytest.raises(ValueError, match="digit_size"):
    suppression.digits_on_images(  # 28 px digits on 20 px images
      base[:, :20, :20], digits.train.images, digits.train.labels, pool_size=4, seed=0
    )


def test_multi_digits_keep_both_labels_without_overlap():
  digits = sources.load("digits")
  images, labels = suppression.multi_digits(
    digits.train.images,
    digits.train.labels,
    num_images=20,
    canvas=64,
    fixed_size=16,
    varying_size=40,
    seed=3,
  )
  assert images.shape == (20, 64, 64, 1) and labels.shape == (20, 2)
  assert set(labels.ravel().tolist()) <= set(range(10))
  # Solid squares as digits: both present and never overlapping means exactly
  # 16^2 + 40^2 lit pixels on every canvas.
  squares = np.full((3, 28, 28), 255, np.uint8)
  solid, _ = suppression.multi_digits(
    squares, np.arange(3), num_images=50, canvas=64, fixed_size=16, varying_size=40, seed=4
  )
  np.testing.assert_array_equal((solid > 0).sum(axis=(1, 2, 3)), 16**2 + 40**2)
  with pytest.raises(ValueError, match="do not fit"):
    suppression.multi_digits(
      digits.train.images,
      digits.train.labels,
      num_images=1,
      canvas=50,
      fixed_size=20,
      varying_size=40,
    )
