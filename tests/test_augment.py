"""Augmentation: deterministic parts against PIL / NumPy / colorsys, and key semantics."""

import colorsys
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from contrastive.data import augment


def _image(seed, h=32, w=32, c=3):
  return np.random.default_rng(seed).random((h, w, c)).astype(np.float32)


@pytest.mark.parametrize(
  "box,size",
  [
    ((3, 5, 20, 17), 32),
    ((0, 0, 32, 32), 32),
    ((10, 2, 8, 12), 32),
    ((4, 4, 24, 28), 20),
    ((0, 0, 32, 32), 12),
  ],
)
def test_resized_crop_matches_pil(box, size):
  img = _image(0)
  top, left, h, w = box
  got = jax.jit(augment.resized_crop, static_argnums=2)(img, box, size)
  for c in range(3):
    ref = Image.fromarray(img[..., c], mode="F").resize(
      (size, size), Image.BILINEAR, box=(left, top, left + w, top + h)
    )
    np.testing.assert_allclose(got[..., c], np.asarray(ref), atol=1e-5)


def test_crop_boxes_obey_torchvision_constraints():
  keys = jax.random.split(jax.random.key(0), 2000)
  scale, ratio = (0.2, 1.0), (3 / 4, 4 / 3)
  top, left, h, w = jax.vmap(lambda k: augment.crop_box(k, 32, 32, scale, ratio))(keys)
  top, left, h, w = map(np.asarray, (top, left, h, w))
  assert np.all(top >= 0) and np.all(left >= 0)
  assert np.all(top + h <= 32) and np.all(left + w <= 32)
  # Rounded sides: area and aspect within the ranges up to half a pixel per side.
  area = h * w / 1024
  assert np.all(area >= ((np.sqrt(0.2 * 1024) - 1) ** 2) / 1024 * 0.9)
  aspect = w / h
  assert np.all(aspect >= 0.75 * 0.85) and np.all(aspect <= 4 / 3 / 0.85)
  # Offsets are uniform over the valid range: both extremes occur.
  assert np.any(top == 0) and np.any(top + h == 32)


def test_crop_box_fallback_is_central_when_nothing_fits():
  # A 4x40 image cannot hold any crop of aspect <= 4/3 and area >= 90%.
  box = augment.crop_box(jax.random.key(1), 4, 40, (0.9, 1.0), (3 / 4, 4 / 3))
  np.testing.assert_array_equal([int(b) for b in box], [0, 17, 4, 5])


def test_flip_and_grayscale_match_numpy():
  img = _image(1)
  np.testing.assert_array_equal(jnp.asarray(img)[:, ::-1], np.flip(img, axis=1))
  gray = augment.grayscale(img)
  ref = 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]
  for c in range(3):
    np.testing.assert_allclose(gray[..., c], ref, atol=1e-6)


@pytest.mark.parametrize("factor", [0.6, 1.0, 1.4])
def test_brightness_contrast_saturation_match_torchvision_definitions(factor):
  img = _image(2)
  np.testing.assert_allclose(
    augment.adjust_brightness(img, factor), np.clip(img * factor, 0, 1), atol=1e-6
  )
  gray = img @ np.array([0.299, 0.587, 0.114], np.float32)
  np.testing.assert_allclose(
    augment.adjust_contrast(img, factor),
    np.clip(factor * img + (1 - factor) * gray.mean(), 0, 1),
    atol=1e-6,
  )
  np.testing.assert_allclose(
    augment.adjust_saturation(img, factor),
    np.clip(factor * img + (1 - factor) * gray[..., None], 0, 1),
    atol=1e-6,
  )


@pytest.mark.parametrize("shift", [-0.5, -0.13, 0.0, 0.07, 0.4])
def test_hue_matches_colorsys(shift):
  img = _image(3, 8, 8)
  img[0, 0] = [0.5, 0.5, 0.5]  # gray: hue undefined, must stay gray
  img[0, 1] = [1.0, 0.0, 0.0]
  got = np.asarray(augment.adjust_hue(img, shift))
  for y in range(8):
    for x in range(8):
      h, s, v = colorsys.rgb_to_hsv(*img[y, x])
      want = colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)
      np.testing.assert_allclose(got[y, x], want, atol=1e-5)


def test_gaussian_blur_matches_numpy():
  img = _image(4, 16, 16)
  sigma, ksize = 1.3, 5
  got = augment.gaussian_blur(img, sigma, ksize)
  x = np.arange(ksize) - ksize // 2
  k = np.exp(-0.5 * (x / sigma) ** 2)
  k /= k.sum()
  padded = np.pad(img.astype(np.float64), ((2, 2), (2, 2), (0, 0)), mode="reflect")
  ref = np.zeros_like(img, dtype=np.float64)
  for i in range(ksize):
    for j in range(ksize):
      ref += k[i] * k[j] * padded[i : i + 16, j : j + 16]
  np.testing.assert_allclose(got, ref, atol=1e-5)


def test_jitter_in_given_order_equals_the_ops_composed():
  img = _image(5)
  strengths = (0.4, 0.4, 0.4, 0.1)
  order, factors = augment.jitter_params(jax.random.key(3), strengths)
  got = augment.color_jitter(img, order, factors, strengths)
  ops = (
    augment.adjust_brightness,
    augment.adjust_contrast,
    augment.adjust_saturation,
    augment.adjust_hue,
  )
  want = jnp.asarray(img)
  for op in np.asarray(order):
    want = ops[op](want, factors[op])
  np.testing.assert_allclose(got, want, atol=1e-6)
  b, c, s, h = np.asarray(factors)
  assert 0.6 <= b <= 1.4 and 0.6 <= c <= 1.4 and 0.6 <= s <= 1.4 and -0.1 <= h <= 0.1
  assert sorted(np.asarray(order).tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("name", sorted(augment.PRESETS))
def test_views_are_deterministic_in_the_key_and_in_range(name):
  config = augment.preset(name, 24)
  images = (np.random.default_rng(6).random((8, 32, 32, 3)) * 255).astype(np.uint8)
  fn = jax.jit(augment.augment_batch, static_argnums=2)
  a1, a2 = fn(jax.random.key(0), images, config)
  b1, b2 = fn(jax.random.key(0), images, config)
  c1, _ = fn(jax.random.key(1), images, config)
  np.testing.assert_array_equal(a1, b1)
  np.testing.assert_array_equal(a2, b2)
  assert a1.shape == (8, 24, 24, 3) and a1.dtype == jnp.float32
  assert float(jnp.min(a1)) >= 0 and float(jnp.max(a1)) <= 1
  if name != "none":
    assert not np.allclose(a1, c1)  # another key, other views
    assert not np.allclose(a1, a2)  # the two views differ


def test_an_images_views_do_not_depend_on_its_batch_position():
  config = augment.preset("simclr_cifar", 32)
  images = (np.random.default_rng(7).random((6, 32, 32, 3)) * 255).astype(np.uint8)
  idx = jnp.arange(100, 106)
  # Jitted, as the trainer runs it (op by op: 8.6 s against 4.0).
  views = jax.jit(lambda key, images, idx: augment.augment_batch(key, images, config, idx))
  v1, _ = views(jax.random.key(2), images, idx)
  perm = np.array([3, 0, 5, 1, 4, 2])
  w1, _ = views(jax.random.key(2), images[perm], idx[perm])
  np.testing.assert_allclose(w1, np.asarray(v1)[perm], atol=1e-6)


def test_single_channel_images_skip_colour_steps():
  config = augment.preset("simclr_cifar", 28)
  images = (np.random.default_rng(8).random((4, 28, 28, 1)) * 255).astype(np.uint8)
  v1, v2 = augment.augment_batch(jax.random.key(0), images, config)
  assert v1.shape == (4, 28, 28, 1) and v2.shape == (4, 28, 28, 1)


def test_augment_batch_compiles_once():
  config = augment.preset("simclr_imagenet", 32)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def views(key, images):
    return augment.augment_batch(key, images, config)

  for seed in range(3):
    images = (np.random.default_rng(seed).random((4, 40, 40, 3)) * 255).astype(np.uint8)
    views(jax.random.key(seed), images)


def test_bad_configs_are_rejected():
  with pytest.raises(ValueError, match="crop_scale"):
    augment.AugmentConfig(size=32, crop_scale=(0.5, 0.2))
  with pytest.raises(ValueError, match="flip_prob"):
    augment.AugmentConfig(size=32, flip_prob=1.5)
  with pytest.raises(ValueError, match="hue"):
    augment.AugmentConfig(size=32, jitter=(0.4, 0.4, 0.4, 0.6))
  with pytest.raises(ValueError, match="simclr_cifar"):
    augment.preset("simclr_cifra", 32)
  assert math.isclose(augment.simclr(32, 1.0).jitter[3], 0.2)
