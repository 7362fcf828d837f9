"""Feature-suppression datasets (Chen, Luo & Li, NeurIPS 2021, Sec. 4).

* RandBit: each image carries an n-bit integer derived deterministically from the
  image itself (a hash of its bytes into 2^n buckets), so it is the same in every
  epoch and in both views. Its n binary digits become n constant 0/1 channels,
  concatenated *after* augmentation (never augmented); at evaluation they are
  appended to the clean image. An easy feature that predicts instance identity
  and can suppress the harder one (the digit).
* Digits on images: a pool of the first k digits; each image gets one of them,
  pasted unresized at one of 9 cells of a 3x3 grid (offsets 0.15, 0.45, 0.75 of
  the side) by pixel-wise max. The digit and its cell are fixed per image (drawn
  from a seed), so both views show the same digit, augmented with the image.
* MultiDigits: two digits on one canvas, one of fixed size and one of a size you
  choose, both labels kept: the larger one tends to suppress the smaller.
"""

import hashlib

import jax.numpy as jnp
import numpy as np
from PIL import Image

GRID_OFFSETS = (0.15, 0.45, 0.75)


def randbit_codes(images: np.ndarray, num_bits: int) -> np.ndarray:
  """The RandBit bits of each image: uint8 [N, num_bits] of 0/1.

  Each image's bytes (with its shape) are hashed with SHA-256; the first 8 bytes,
  read as an unsigned integer mod 2^num_bits, give the bucket, whose binary digits
  (least significant first) are the bits. Deterministic, and uniform over buckets
  for distinct images.
  """
  if not 0 <= num_bits <= 64:
    raise ValueError(f"num_bits must be in [0, 64], got {num_bits}.")
  codes = np.zeros((len(images), num_bits), np.uint8)
  if num_bits == 0:
    return codes
  shifts = np.arange(num_bits, dtype=np.uint64)
  for i, image in enumerate(images):
    digest = hashlib.sha256(repr(image.shape).encode() + image.tobytes()).digest()
    bucket = np.uint64(int.from_bytes(digest[:8], "little") % (1 << num_bits))
    codes[i] = (bucket >> shifts) & np.uint64(1)
  return codes


def append_bits(views, bits):
  """Concatenates constant bit channels to already augmented views.

  Args:
    views: float [B, H, W, C] views (or clean images at evaluation) in [0, 1].
    bits: [B, n] 0/1 bits of each image.

  Returns:
    float [B, H, W, C + n]: channel C + j is bit j of the image, everywhere.
  """
  b, h, w, _ = views.shape
  planes = jnp.broadcast_to(bits.astype(views.dtype)[:, None, None, :], (b, h, w, bits.shape[1]))
  return jnp.concatenate([views, planes], axis=-1)


def _fit_digit(digit: np.ndarray, size: int | None) -> np.ndarray:
  """A uint8 [h, w] digit, resized (bilinear) to size x size if `size` is given."""
  digit = np.asarray(digit).squeeze(-1) if digit.ndim == 3 else np.asarray(digit)
  if size is None or size == digit.shape[0]:
    return digit
  resized = Image.fromarray(digit.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR)
  return np.clip(np.round(np.asarray(resized)), 0, 255).astype(np.uint8)


def digits_on_images(
  images, digits, digit_labels, *, pool_size: int, seed: int, digit_size: int | None = None
):
  """Pastes one of the first `pool_size` digits on each image, by pixel-wise max.

  Args:
    images: uint8 [N, H, W, C] base images.
    digits: uint8 [M, h, w] or [M, h, w, 1] digit images (MNIST, or `digits`).
    digit_labels: [M] their labels.
    pool_size: k, how many distinct digits are used (the study's knob).
    seed: draws each image's digit and grid cell.
    digit_size: resize digits to this side first (the notebook pastes unresized;
      on 32x32 images a 28x28 digit would cover most of the image).

  Returns:
    (images uint8 [N, H, W, C], digit labels int32 [N], cells int32 [N] in 0..8).
  """
  if not 1 <= pool_size <= len(digits):
    raise ValueError(f"pool_size must be in [1, {len(digits)}], got {pool_size}.")
  n, height, width, _ = images.shape
  pool = [_fit_digit(d, digit_size) for d in digits[:pool_size]]
  dh, dw = pool[0].shape
  if dh > height or dw > width:
    raise ValueError(f"digits of {dh}x{dw} do not fit {height}x{width} images; set digit_size.")
  rng = np.random.default_rng(seed)
  choice = rng.integers(0, pool_size, n)
  cell = rng.integers(0, 9, n).astype(np.int32)
  out = images.copy()
  for i in range(n):
    top = min(int(GRID_OFFSETS[cell[i] // 3] * height), height - dh)
    left = min(int(GRID_OFFSETS[cell[i] % 3] * width), width - dw)
    patch = out[i, top : top + dh, left : left + dw]
    np.maximum(patch, pool[choice[i]][:, :, None], out=patch)
  labels = np.asarray(digit_labels)[:pool_size][choice].astype(np.int32)
  return out, labels, cell


def paste_digits_on_splits(train, test, *, pool_size: int, seed: int, digit_size: int | None):
  """Digits on images for a dataset's two splits, from the embedded `digits` pool.

  Both splits draw from the same pool (the first `pool_size` training digits of
  the embedded `digits` dataset, MNIST's framing), each image its own digit and
  cell (fixed: drawn from `seed`, the test split from `seed + 1`).

  Args:
    train, test: (uint8 images [N, H, W, C], labels [N]) of the base dataset.
    pool_size, seed, digit_size: as in `digits_on_images`.

  Returns:
    ((train images, train labels), (test images, test labels)) with the digits
    pasted, and (train digit labels, test digit labels), int32.
  """
  from contrastive.data import embedded  # noqa: PLC0415 - loads scikit-learn

  (digit_images, digit_labels), _, _ = embedded.digits()
  out, digit_out = [], []
  for offset, (images, labels) in enumerate((train, test)):
    pasted, digit, _ = digits_on_images(
      images,
      digit_images,
      digit_labels,
      pool_size=pool_size,
      seed=seed + offset,
      digit_size=digit_size,
    )
    out.append((pasted, labels))
    digit_out.append(digit)
  return tuple(out), tuple(digit_out)


def multi_digits(
  digits,
  digit_labels,
  *,
  num_images: int,
  canvas: int = 112,
  fixed_size: int = 20,
  varying_size: int = 40,
  seed: int = 0,
):
  """Two digits per canvas: one `fixed_size` px, one `varying_size` px.

  The two boxes never overlap: they are separated along a random axis, the free
  space split at random before, between and after them. The exact construction of
  the paper's MultiDigits is unverified; this follows a public reproduction
  (112x112, one digit 20 px, the other 20 to 80 px).

  Returns:
    (images uint8 [num_images, canvas, canvas, 1], labels int32 [num_images, 2]:
    column 0 the fixed-size digit's, column 1 the varying-size digit's).
  """
  if fixed_size + varying_size > canvas:
    raise ValueError(
      f"digits of {fixed_size} and {varying_size} px do not fit side by side "
      f"on a {canvas} px canvas."
    )
  rng = np.random.default_rng(seed)
  images = np.zeros((num_images, canvas, canvas, 1), np.uint8)
  labels = np.zeros((num_images, 2), np.int32)
  sizes = (fixed_size, varying_size)
  for i in range(num_images):
    chosen = rng.integers(0, len(digits), 2)
    # Separate the two along a random axis, in random order, with the free space
    # split at random between before, between and after; the other axis is free.
    axis, first = rng.integers(0, 2), rng.integers(0, 2)
    gaps = np.sort(rng.integers(0, canvas - fixed_size - varying_size + 1, 2))
    along = [0, 0]
    along[first] = gaps[0]
    along[1 - first] = gaps[0] + sizes[first] + (gaps[1] - gaps[0])
    for j in range(2):
      across = rng.integers(0, canvas - sizes[j] + 1)
      y, x = (along[j], across) if axis == 0 else (across, along[j])
      patch = images[i, y : y + sizes[j], x : x + sizes[j], 0]
      np.maximum(patch, _fit_digit(digits[chosen[j]], sizes[j]), out=patch)
    labels[i] = np.asarray(digit_labels)[chosen]
  return images, labels
