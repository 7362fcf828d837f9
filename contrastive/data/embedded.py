"""Datasets that ship with the package or are generated: no network, no preparation.

* `digits`: scikit-learn's bundled handwritten digits (1,797 8x8 images, 10
  classes), framed like MNIST: resized to 20x20 and centred on a 28x28 canvas.
  Our stand-in for MNIST where MNIST cannot be downloaded (the RandBit study).
* `shapes`: a procedural dataset, generated deterministically from a seed: one
  of 10 shapes per 32x32 image (3 equal channels), under nuisance position, scale,
  a small rotation, foreground and background brightness, and pixel noise. Every
  nuisance is one SimCLR's crops and jitter also vary, so the label is what
  augmentation-invariant features keep, while raw pixels mix classes (the
  quickstart's dataset).
* `shapes_colour`: the same shapes under nuisances augmentation does not remove:
  random foreground and background colours, any rotation, a sinusoidal background
  texture. Colour is a per-image feature that survives SimCLR's colour jitter, and
  it suppresses the shape (Chen et al.'s feature suppression): a ConvN trained as
  the quickstart reaches kNN 0.197 here against 0.951 on `shapes`.

Each loader returns ((train_images, train_labels), (test_images, test_labels),
num_classes), images uint8 [N, H, W, C] and labels int32 [N].
"""

import gzip
import importlib.util
import os

import numpy as np
from PIL import Image

SHAPE_CLASSES = (
    "disk", "ring", "square", "triangle", "plus",
    "star", "ellipse", "crescent", "bars", "ell",
)  # fmt: skip

# The procedural dataset's default sizes: big enough for a meaningful kNN, small
# enough to train on in minutes on 2 CPU cores.
SHAPES_TRAIN = 10_000
SHAPES_TEST = 2_000
_SUPERSAMPLE = 2  # render at 2x, then average: anti-aliased edges


def digits_arrays():
  """scikit-learn's digits, as its `load_digits` gives them: images float64 [1797, 8, 8]
  (0..16) and labels int [1797].

  Read from the CSV scikit-learn ships, without importing scikit-learn (its datasets
  module imports SciPy: 0.5-0.8 s of every process that loads `digits`); through
  `load_digits` where that file is not where scikit-learn 1.x keeps it.
  """
  spec = importlib.util.find_spec("sklearn")
  for root in getattr(spec, "submodule_search_locations", None) or []:
    path = os.path.join(root, "datasets", "data", "digits.csv.gz")
    if os.path.exists(path):
      with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
      return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
  from sklearn import datasets  # noqa: PLC0415

  bunch = datasets.load_digits()
  return bunch.images, bunch.target


def digits(seed: int = 0):
  """scikit-learn's digits as 28x28x1 uint8, 1,497 train and 300 test images.

  The split is fixed (a permutation drawn with seed 0) whatever `seed`, so every
  run evaluates on the same 300 images; `seed` is accepted for a uniform interface.
  """
  del seed
  digit_images, digit_labels = digits_arrays()
  images = np.zeros((len(digit_images), 28, 28, 1), np.uint8)
  for i, img in enumerate(digit_images):  # values 0..16, ink high as in MNIST
    big = Image.fromarray((img * (255.0 / 16.0)).astype(np.float32), mode="F")
    big = np.asarray(big.resize((20, 20), Image.BILINEAR))
    images[i, 4:24, 4:24, 0] = np.clip(np.round(big), 0, 255).astype(np.uint8)
  labels = digit_labels.astype(np.int32)
  order = np.random.RandomState(0).permutation(len(labels))
  test, train = order[:300], order[300:]
  return (images[train], labels[train]), (images[test], labels[test]), 10


def _shape_mask(name, u, v):
  """Inside-mask of shape `name` at unit coordinates (u, v) (arrays of one shape)."""
  s3 = np.sqrt(3.0)
  if name in ("disk", "ring", "star", "crescent"):
    r = np.sqrt(u**2 + v**2)
  if name == "disk":
    return r <= 1.0
  if name == "ring":
    return (r <= 1.0) & (r >= 0.55)
  if name == "square":
    return np.maximum(np.abs(u), np.abs(v)) <= 0.8
  if name == "triangle":
    return (v >= -0.5) & (s3 * u + v <= 1.0) & (-s3 * u + v <= 1.0)
  if name == "plus":
    return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))
  if name == "star":
    return r <= 0.5 + 0.45 * np.cos(5 * np.arctan2(v, u))
  if name == "ellipse":
    return u**2 + (v / 0.45) ** 2 <= 1.0
  if name == "crescent":
    return (r <= 1.0) & ((u - 0.45) ** 2 + v**2 > 0.8**2)
  if name == "bars":
    return (np.abs(u) <= 1.0) & (np.abs(v) >= 0.2) & (np.abs(v) <= 0.65)
  return ((u >= -0.8) & (u <= -0.35) & (np.abs(v) <= 0.9)) | (  # "ell"
    (u >= -0.8) & (u <= 0.8) & (v >= 0.45) & (v <= 0.9)
  )


def _shape_masks(label, u, v):
  """Inside-masks [B, S, S] of each image's shape, in its own unit coordinates: each
  class's mask computed on its own images only."""
  out = np.zeros(u.shape, bool)
  for c, name in enumerate(SHAPE_CLASSES):
    sel = label == c
    out[sel] = _shape_mask(name, u[sel], v[sel])
  return out


def _luminance(rgb):
  return rgb @ np.array([0.299, 0.587, 0.114])


def _masks_image(label, cx, cy, scale, angle, size):
  """Anti-aliased inside-coverage [n, size, size] of each image's shape."""
  n = len(label)
  s = size * _SUPERSAMPLE
  grid = (np.arange(s) + 0.5) / _SUPERSAMPLE
  x = grid[None, None, :] - cx[:, None, None]
  y = grid[None, :, None] - cy[:, None, None]
  cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
  u = (cos * x + sin * y) / scale[:, None, None]
  v = (-sin * x + cos * y) / scale[:, None, None]
  inside = _shape_masks(label, u, v).astype(np.float32)
  return inside.reshape(n, size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(2, 4))


def render_shapes(rng: np.random.Generator, n: int, size: int = 32, *, colour: bool = False):
  """Renders `n` shape images with their labels (uint8 [n, size, size, 3], int32 [n]).

  colour=False (`shapes`): grey levels (foreground 0.6-1, background 0-0.4),
  rotation within +-0.3 rad, no texture. colour=True (`shapes_colour`): random RGB
  colours kept apart in luminance, any rotation, a random sinusoidal texture.
  """
  label = rng.integers(0, len(SHAPE_CLASSES), n).astype(np.int32)
  scale = rng.uniform(0.2, 0.38, n) * size  # radius in pixels
  cx = rng.uniform(0.3, 0.7, n) * size
  cy = rng.uniform(0.3, 0.7, n) * size
  if not colour:
    angle = rng.uniform(-0.3, 0.3, n)
    fg = np.repeat(rng.uniform(0.6, 1.0, (n, 1)), 3, axis=1)
    bg = np.repeat(rng.uniform(0.0, 0.4, (n, 1)), 3, axis=1)
    background = np.broadcast_to(bg[:, None, None, :], (n, size, size, 3))
  else:
    angle = rng.uniform(0, 2 * np.pi, n)
    fg = rng.uniform(0, 1, (n, 3))
    bg = rng.uniform(0, 1, (n, 3))
    # Keep the shape visible: push the colours apart in luminance where too close.
    close = np.abs(_luminance(fg) - _luminance(bg)) < 0.25
    bg[close] = 1.0 - fg[close]
    freq = rng.uniform(0.1, 0.6, n)  # radians per pixel of the texture
    tex_angle = rng.uniform(0, np.pi, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    amp = rng.uniform(0.0, 0.25, n)
    g = np.arange(size) + 0.5
    proj = (
      np.cos(tex_angle)[:, None, None] * g[None, None, :]
      + np.sin(tex_angle)[:, None, None] * g[None, :, None]
    )
    texture = amp[:, None, None] * np.sin(freq[:, None, None] * proj + phase[:, None, None])
    background = np.clip(bg[:, None, None, :] + texture[..., None], 0, 1)
  inside = _masks_image(label, cx, cy, scale, angle, size)[..., None]
  image = inside * fg[:, None, None, :] + (1 - inside) * background
  image = image + rng.normal(0, 0.03, image.shape)
  return np.clip(np.round(image * 255), 0, 255).astype(np.uint8), label


def shapes(
  seed: int = 0, num_train: int = SHAPES_TRAIN, num_test: int = SHAPES_TEST, *, colour: bool = False
):
  """The procedural shapes dataset: 32x32x3 uint8, 10 classes, balanced in expectation.

  Same seed, same arrays (NumPy's PCG64 generator). Test images are drawn after
  the training images from the same stream, so the two never coincide.

  Raw-pixel weighted kNN (cosine, k = 200, T = 0.1, as `probes.knn_accuracy`)
  on the default split (seed 0), chance 0.1: 0.615 (`shapes`), 0.175
  (`shapes_colour`); measured with `python benchmarks/datasets.py`.
  """
  rng = np.random.default_rng(seed)
  n = num_train + num_test
  chunks = [render_shapes(rng, min(1000, n - i), colour=colour) for i in range(0, n, 1000)]
  images = np.concatenate([c[0] for c in chunks])
  labels = np.concatenate([c[1] for c in chunks])
  return (
    (images[:num_train], labels[:num_train]),
    (images[num_train:], labels[num_train:]),
    len(SHAPE_CLASSES),
  )


def shapes_colour(seed: int = 0, num_train: int = SHAPES_TRAIN, num_test: int = SHAPES_TEST):
  """`shapes` under colour, rotation and texture nuisances (see the module docstring)."""
  return shapes(seed, num_train, num_test, colour=True)
