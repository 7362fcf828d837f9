"""SimCLR / NPID augmentation in JAX: jitted, vmapped over the batch, a key per image.

Images are float32 [H, W, C] in [0, 1] (`to_float` converts uint8). Each random
step draws from its own key derived from the image's key, so the same key gives
the same view, bit for bit, on any device. `two_views` makes both views of an image
from one key.

The steps follow torchvision's definitions (v0.15+), so published recipes carry
over; the deviations, each below 1e-4 in pixel value, are:
* grayscale weights are ITU-R 601-2's (0.299, 0.587, 0.114), as PIL's
  `convert("L")`; torchvision's tensor path uses 0.2989 for red;
* the resized crop is PIL's antialiased bilinear resampling of the crop box
  (torchvision's PIL path; its tensor path with antialias=True is within 1e-3);
* the Gaussian blur draws sigma per image, as torchvision, with reflect padding
  and a kernel of `blur_kernel_fraction` of the side (SimCLR: 10%), made odd.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """One augmentation recipe; `PRESETS` holds the papers'.

  Attributes:
    size: output side in pixels (square views).
    crop_scale: (min, max) area fraction of the random resized crop.
    crop_ratio: (min, max) aspect ratio (w / h) of the crop, sampled log-uniformly.
    flip_prob: probability of a horizontal flip.
    jitter: (brightness, contrast, saturation, hue) strengths; 0 disables one.
    jitter_prob: probability of applying colour jitter (in random op order).
    grayscale_prob: probability of converting to grayscale (3 equal channels).
    blur_prob: probability of a Gaussian blur with sigma ~ U(blur_sigma).
    blur_sigma: (min, max) sigma in pixels.
    blur_kernel_fraction: kernel side as a fraction of `size` (made odd, >= 3).
    solarize_prob: probability of inverting pixels >= 0.5 (BYOL).
  """

  size: int
  crop_scale: tuple[float, float] = (0.08, 1.0)
  crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
  flip_prob: float = 0.5
  jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
  jitter_prob: float = 0.8
  grayscale_prob: float = 0.2
  blur_prob: float = 0.0
  blur_sigma: tuple[float, float] = (0.1, 2.0)
  blur_kernel_fraction: float = 0.1
  solarize_prob: float = 0.0

  def __post_init__(self):
    lo, hi = self.crop_scale
    if not 0 < lo <= hi <= 1:
      raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}.")
    if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
      raise ValueError(f"crop_ratio must satisfy 0 < min <= max, got {self.crop_ratio}.")
    for name in ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob"):
      if not 0 <= getattr(self, name) <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
    if any(j < 0 for j in self.jitter) or self.jitter[3] > 0.5:
      raise ValueError(f"jitter strengths must be >= 0 with hue <= 0.5, got {self.jitter}.")
    if self.size < 1:
      raise ValueError(f"size must be >= 1, got {self.size}.")


def simclr(size: int, strength: float = 0.5, blur: bool | None = None) -> AugmentConfig:
  """SimCLR's recipe: jitter (0.8s, 0.8s, 0.8s, 0.2s) with p 0.8, grayscale p 0.2.

  CIFAR uses strength s = 0.5 and no blur; ImageNet s = 1.0 with blur p 0.5
  (`blur` defaults to size > 64).
  """
  s = strength
  blur = size > 64 if blur is None else blur
  return AugmentConfig(
    size=size, jitter=(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s), blur_prob=0.5 if blur else 0.0
  )


PRESETS = {
  # NPID's CIFAR recipe (Wu et al. 2018), which Wang & Liu follow: jitter always.
  "npid": lambda size: AugmentConfig(
    size=size, crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.4), jitter_prob=1.0
  ),
  # ImageNet-100 as Wang & Liu train it (spec 1.4; CMC's recipe): NPID's, plus blur.
  "npid_imagenet": lambda size: AugmentConfig(
    size=size, crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.4), jitter_prob=1.0, blur_prob=0.5
  ),
  "simclr_cifar": lambda size: simclr(size, 0.5, blur=False),
  "simclr_imagenet": lambda size: simclr(size, 1.0, blur=True),
  # Chen et al.'s RandBit notebook: crop area 0.5-1, no colour augmentation.
  "randbit": lambda size: AugmentConfig(
    size=size,
    crop_scale=(0.5, 1.0),
    flip_prob=0.0,
    jitter=(0, 0, 0, 0),
    jitter_prob=0.0,
    grayscale_prob=0.0,
  ),
  "none": lambda size: AugmentConfig(
    size=size,
    crop_scale=(1.0, 1.0),
    crop_ratio=(1, 1),
    flip_prob=0.0,
    jitter=(0, 0, 0, 0),
    jitter_prob=0.0,
    grayscale_prob=0.0,
  ),
}


def preset(name: str, size: int) -> AugmentConfig:
  """The named recipe at output side `size`."""
  if name not in PRESETS:
    raise ValueError(f"Unknown augmentation {name!r}; valid: {', '.join(PRESETS)}.")
  return PRESETS[name](size)


def to_float(images_uint8: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [0, 1]."""
  return images_uint8.astype(jnp.float32) / 255.0


# ----------------------------------------------------------------------------------
# Deterministic steps (given their parameters), each matched to a reference in tests.


def crop_box(key, height: int, width: int, scale, ratio, attempts: int = 10):
  """torchvision's RandomResizedCrop.get_params: (top, left, h, w), int32.

  Up to `attempts` draws of area ~ U(scale) * H * W and log-aspect ~
  U(log ratio); the first that fits is taken; if none does, the whole image
  cropped centrally to the nearest allowed aspect ratio.
  """
  # One draw for every number (each jax.random call is a threefry hash XLA compiles:
  # five of them made this small function ~1 s of the step's compilation).
  u = jax.random.uniform(key, (2 * attempts + 2,))
  u_area, u_ratio, u_top, u_left = u[:attempts], u[attempts:-2], u[-2], u[-1]
  area = height * width * (scale[0] + (scale[1] - scale[0]) * u_area)
  log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
  aspect = jnp.exp(log_lo + (log_hi - log_lo) * u_ratio)
  w = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
  h = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
  ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
  first = jnp.argmax(ok)
  # Fallback, as torchvision: central crop at the clamped aspect ratio.
  in_ratio = width / height
  if in_ratio < ratio[0]:
    fw, fh = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    fw, fh = int(round(height * ratio[1])), height
  else:
    fw, fh = width, height
  any_ok = jnp.any(ok)
  h = jnp.where(any_ok, h[first], fh)
  w = jnp.where(any_ok, w[first], fw)
  top = jnp.floor(u_top * (height - h + 1)).astype(jnp.int32)
  left = jnp.floor(u_left * (width - w + 1)).astype(jnp.int32)
  top = jnp.where(any_ok, top, (height - fh) // 2)
  left = jnp.where(any_ok, left, (width - fw) // 2)
  return top, left, h, w


def resized_crop(image, box, size: int):
  """The crop `box` = (top, left, h, w) resampled to size x size.

  Antialiased bilinear (a triangle kernel widened when downscaling), identical to
  PIL's `resize((size, size), BILINEAR, box=...)` on float images.
  """
  top, left, h, w = (jnp.asarray(b, jnp.float32) for b in box)
  sy, sx = size / h, size / w
  return jax.image.scale_and_translate(
    image,
    (size, size, image.shape[-1]),
    (0, 1),
    jnp.stack([sy, sx]),
    jnp.stack([-top * sy, -left * sx]),
    method="linear",
    antialias=True,
  )


def grayscale(image):
  """ITU-R 601-2 luma, replicated to the input's channels."""
  gray = image @ jnp.asarray(GRAY_WEIGHTS, image.dtype)
  return jnp.broadcast_to(gray[..., None], image.shape)


def adjust_brightness(image, factor):
  return jnp.clip(image * factor, 0.0, 1.0)


def adjust_contrast(image, factor):
  """Blend with the mean of the grayscale image (torchvision)."""
  mean = jnp.mean(image @ jnp.asarray(GRAY_WEIGHTS, image.dtype))
  return jnp.clip(factor * image + (1 - factor) * mean, 0.0, 1.0)


def adjust_saturation(image, factor):
  """Blend with the per-pixel grayscale image (torchvision)."""
  return jnp.clip(factor * image + (1 - factor) * grayscale(image), 0.0, 1.0)


def rgb_to_hsv(image):
  """[..., 3] RGB in [0, 1] -> HSV in [0, 1] (torchvision's `_rgb2hsv`)."""
  r, g, b = image[..., 0], image[..., 1], image[..., 2]
  maxc, minc = jnp.max(image, axis=-1), jnp.min(image, axis=-1)
  eqc = maxc == minc
  cr = maxc - minc
  s = cr / jnp.where(eqc, 1.0, maxc)
  div = jnp.where(eqc, 1.0, cr)
  rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
  h = jnp.where(maxc == r, bc - gc, jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
  h = jnp.where(eqc, 0.0, h)
  h = jnp.mod(h / 6.0 + 1.0, 1.0)
  return jnp.stack([h, s, maxc], axis=-1)


def hsv_to_rgb(hsv):
  """Inverse of `rgb_to_hsv` (torchvision's `_hsv2rgb`)."""
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  i = jnp.floor(h * 6.0)
  f = h * 6.0 - i
  i = i.astype(jnp.int32) % 6
  p = jnp.clip(v * (1.0 - s), 0.0, 1.0)
  q = jnp.clip(v * (1.0 - s * f), 0.0, 1.0)
  t = jnp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
  table = jnp.stack(
    [
      jnp.stack([v, q, p, p, t, v], axis=-1),
      jnp.stack([t, v, v, q, p, p], axis=-1),
      jnp.stack([p, p, t, v, v, q], axis=-1),
    ],
    axis=-2,
  )  # [..., 3, 6]
  return jnp.take_along_axis(
    table, jnp.broadcast_to(i[..., None, None], table.shape[:-1] + (1,)), axis=-1
  )[..., 0]


def adjust_hue(image, shift):
  """Rotate hue by `shift` in [-0.5, 0.5] (fraction of the colour wheel)."""
  hsv = rgb_to_hsv(image)
  hsv = hsv.at[..., 0].set(jnp.mod(hsv[..., 0] + shift, 1.0))
  return hsv_to_rgb(hsv)


def gaussian_blur(image, sigma, kernel_size: int):
  """Separable Gaussian blur, reflect padding (torchvision's GaussianBlur)."""
  half = kernel_size // 2
  x = jnp.arange(-half, half + 1, dtype=jnp.float32)
  k = jnp.exp(-0.5 * (x / sigma) ** 2)
  k = k / jnp.sum(k)
  padded = jnp.pad(image, ((half, half), (half, half), (0, 0)), mode="reflect")
  h, w = image.shape[:2]
  rows = sum(k[i] * padded[i : i + h] for i in range(kernel_size))
  return sum(k[i] * rows[:, i : i + w] for i in range(kernel_size))


def solarize(image, threshold=0.5):
  return jnp.where(image >= threshold, 1.0 - image, image)


# ----------------------------------------------------------------------------------
# Random composition.


def jitter_params(key, strengths):
  """torchvision's ColorJitter.get_params: op order (a uniform random permutation,
  the ranks of 4 uniform draws) and the four factors, from one draw of 8 numbers."""
  u = jax.random.uniform(key, (8,))
  # The ranks of u[:4] as the order (argsort, stable; without XLA's sort, which cost
  # 3 ms of the quickstart's step for 256 four-element sorts).
  v = u[:4]
  earlier = jnp.tril(jnp.ones((4, 4), bool), k=-1)  # j < i
  rank = jnp.sum((v[None, :] < v[:, None]) | ((v[None, :] == v[:, None]) & earlier), axis=1)
  order = jnp.zeros(4, jnp.int32).at[rank].set(jnp.arange(4, dtype=jnp.int32))
  b, c, s, h = strengths
  low = jnp.asarray([max(0.0, 1 - b), max(0.0, 1 - c), max(0.0, 1 - s), -h], jnp.float32)
  high = jnp.asarray([1 + b, 1 + c, 1 + s, h], jnp.float32)
  return order, low + (high - low) * u[4:]


def color_jitter(image, order, factors, strengths):
  """Applies brightness, contrast, saturation and hue in `order`; a 0 strength skips.

  Hue (an RGB -> HSV -> RGB round trip) costs several times the other three, and
  under `vmap` a per-image choice of op computes every candidate. So the ops before
  hue in an image's order are applied first, hue once, then the ops after it: the
  same ops in the same order on every image, with hue computed once instead of at
  each of the four positions (the result is the same to the bit).
  """
  cheap = [(i, op) for i, op in enumerate((adjust_brightness, adjust_contrast,
                                           adjust_saturation)) if strengths[i] > 0]  # fmt: skip
  hue = strengths[3] > 0
  if not cheap and not hue:
    return image

  def apply_cheap(x, op, when):
    """x after op `op` (an index into the four) if it is a cheap one and `when`."""
    for i, fn in cheap:
      x = jnp.where(when & (op == i), fn(x, factors[i]), x)
    return x

  # The position of hue in the order (4: none, so every op comes "before" it).
  at = jnp.argmax(order == 3) if hue else 4
  for step in range(4):
    image = apply_cheap(image, order[step], step < at)
  if hue:
    image = adjust_hue(image, factors[3])
    for step in range(4):
      image = apply_cheap(image, order[step], step > at)
  return image


def view_draws(key):
  """A view's randomness from its key: the crop's key, the colour jitter's key and 6
  uniforms (flip, jitter applied, grayscale, blur sigma, blur applied, solarize).
  Few draws on purpose: each jax.random call is a threefry hash that XLA compiles,
  and the augmentation's compilation counts in every run's start."""
  k_crop, k_jitter, k_rest = jax.random.split(key, 3)
  return k_crop, k_jitter, jax.random.uniform(k_rest, (6,))


def geometric(draws, image, config: AugmentConfig):
  """The geometric steps: random resized crop to `config.size`, horizontal flip."""
  k_crop, _, u = draws
  height, width, _ = image.shape
  box = crop_box(k_crop, height, width, config.crop_scale, config.crop_ratio)
  x = resized_crop(image, box, config.size)
  return jnp.where(u[0] < config.flip_prob, x[:, ::-1], x)


def photometric(draws, x, config: AugmentConfig):
  """The colour steps: jitter (random op order), grayscale, blur, solarize.

  Jitter and grayscale apply only to 3-channel images.
  """
  _, k_jitter, u = draws
  if x.shape[-1] == 3:
    if config.jitter_prob > 0 and any(s > 0 for s in config.jitter):
      order, factors = jitter_params(k_jitter, config.jitter)
      jittered = color_jitter(x, order, factors, config.jitter)
      x = jnp.where(u[1] < config.jitter_prob, jittered, x)
    if config.grayscale_prob > 0:
      x = jnp.where(u[2] < config.grayscale_prob, grayscale(x), x)
  if config.blur_prob > 0:
    kernel = max(3, int(config.blur_kernel_fraction * config.size) // 2 * 2 + 1)
    lo, hi = config.blur_sigma
    blurred = gaussian_blur(x, lo + (hi - lo) * u[3], kernel)
    x = jnp.where(u[4] < config.blur_prob, blurred, x)
  if config.solarize_prob > 0:
    x = jnp.where(u[5] < config.solarize_prob, solarize(x), x)
  return x


def augment(key, image, config: AugmentConfig):
  """One random view of `image` (float32 [H, W, C] in [0, 1]) -> [size, size, C].

  Steps, in SimCLR's order: random resized crop, horizontal flip (`geometric`),
  then colour jitter, grayscale, Gaussian blur, solarize (`photometric`); their
  randomness drawn from `key` by `view_draws`.
  """
  draws = view_draws(key)
  return photometric(draws, geometric(draws, image, config), config)


def two_views(key, image, config: AugmentConfig):
  """Both views of one image from one key: (view1, view2)."""
  k1, k2 = jax.random.split(key)
  return augment(k1, image, config), augment(k2, image, config)


def augment_batch(key, images_uint8, config: AugmentConfig, indices=None):
  """Two views of every image of a uint8 batch [B, H, W, C] -> 2 x float32 [B, S, S, C].

  Each image's key is `fold_in(key, index)`, with `indices` its dataset indices
  (default: positions in the batch), so an image's views depend on the step's key
  and the image alone, not on which device or batch position it lands.
  """
  if indices is None:
    indices = jnp.arange(images_uint8.shape[0])
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
  return jax.vmap(lambda k, im: two_views(k, to_float(im), config))(keys, images_uint8)


def photometric_batch(key, views_uint8, config: AugmentConfig, indices):
  """The colour steps of two host-cropped views: uint8 [B, 2, S, S, C] -> 2 x float32.

  For streamed datasets, whose crops are made on the host; view v of image i uses
  the draws `augment` would use for it (fold_in(key, index), split in 2, then
  `view_draws`).
  """
  keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(key, i)))(indices)

  def one(k2, pair):
    return tuple(photometric(view_draws(k2[v]), to_float(pair[v]), config) for v in range(2))

  return jax.vmap(one)(keys, views_uint8)
