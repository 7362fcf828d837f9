"""Flax models: ResNets with a CIFAR or ImageNet stem, the RandBit ConvN encoder, an
MLP encoder for vector observations, projection heads, and the encoder + head pair
the trainer uses.

Parameters are float32; `dtype=jnp.bfloat16` runs the convolutions and matmuls in
bfloat16 (mixed precision), and the contrastive losses upcast to float32. Under
`jax.jit` over a device mesh, BatchNorm statistics are those of the global batch
(SimCLR's "global BN") with no explicit cross-device code.
"""

from collections.abc import Sequence
import functools

import flax.linen as nn
from jax import lax
import jax.numpy as jnp

# BatchNorm as in torchvision (momentum 0.1 there is 0.9 here: Flax weighs the old value).
_BN = dict(momentum=0.9, epsilon=1e-5)


def _stored_once(lhs, rhs):
  """`lhs` divided by a one that XLA cannot fold: the same values, bit for bit.

  A division is an expensive instruction to XLA's fusion, which does not duplicate it
  into several consumers; so the chain that produces a convolution's input
  (BatchNorm, ReLU and the residual additions back to the block's input) is computed
  once and stored, instead of again inside the transposing copy ([N, H, W, C] to
  [C, H, W, N]) that feeds the kernel's gradient. That copy read the chain with strides
  and took about a third of a ResNet-18 step on a CPU (BENCHMARKS.md, "Convolution
  inputs stored once on a CPU"). The one is the kernel's first entry times zero plus
  one, without a gradient.
  """
  one = 1 + 0 * lax.stop_gradient(rhs.ravel()[0]).astype(lhs.dtype)
  return lhs / one


def conv_general_dilated(lhs, rhs, *args, **kwargs):
  """`lax.conv_general_dilated` whose input XLA's CPU compiler stores once.

  On a CPU the input goes through `_stored_once`; on other platforms (whose compilers
  do not have the slow transposing copy) the program is `lax.conv_general_dilated`
  itself. The convolutions of every model here use it.
  """
  lhs = lax.platform_dependent(lhs, rhs, cpu=_stored_once, default=lambda lhs, rhs: lhs)
  return lax.conv_general_dilated(lhs, rhs, *args, **kwargs)


def _conv_and_norm(dtype, train: bool):
  """Bias-free convolution and BatchNorm constructors, in `dtype`."""
  conv = functools.partial(
    nn.Conv, use_bias=False, dtype=dtype, conv_general_dilated=conv_general_dilated
  )
  norm = functools.partial(nn.BatchNorm, use_running_average=not train, dtype=dtype, **_BN)
  return conv, norm


class BasicBlock(nn.Module):
  """ResNet-18/34 block: two 3x3 convolutions with a residual connection."""

  filters: int
  strides: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    conv, norm = _conv_and_norm(self.dtype, train)
    y = nn.relu(norm()(conv(self.filters, (3, 3), self.strides, padding=1)(x)))
    y = norm(scale_init=nn.initializers.zeros)(conv(self.filters, (3, 3), padding=1)(y))
    if x.shape != y.shape:
      x = norm()(conv(self.filters, (1, 1), self.strides)(x))
    return nn.relu(x + y)


class Bottleneck(nn.Module):
  """ResNet-50 block: 1x1, 3x3 (strided), 1x1 x4, with a residual connection."""

  filters: int
  strides: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    conv, norm = _conv_and_norm(self.dtype, train)
    y = nn.relu(norm()(conv(self.filters, (1, 1))(x)))
    y = nn.relu(norm()(conv(self.filters, (3, 3), self.strides, padding=1)(y)))
    y = norm(scale_init=nn.initializers.zeros)(conv(self.filters * 4, (1, 1))(y))
    if x.shape != y.shape:
      x = norm()(conv(self.filters * 4, (1, 1), self.strides)(x))
    return nn.relu(x + y)


class ResNet(nn.Module):
  """A ResNet encoder; returns pooled features [B, C] (no classifier).

  Attributes:
    stage_sizes: blocks per stage.
    block: `BasicBlock` or `Bottleneck`.
    stem: "cifar" (3x3 stride-1 conv, no max-pool: for 32x32 inputs; worth ~10
      points on CIFAR) or "imagenet" (7x7 stride-2 conv and 3x3 max-pool).
    width: filters of the first stage (64 in the paper; smaller for quick runs).
    dtype: computation dtype.
  """

  stage_sizes: Sequence[int]
  block: type[nn.Module]
  stem: str = "cifar"
  width: int = 64
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    if self.stem not in ("cifar", "imagenet"):
      raise ValueError(f"Unknown stem {self.stem!r}; valid: cifar, imagenet.")
    x = x.astype(self.dtype)
    conv, norm = _conv_and_norm(self.dtype, train)
    if self.stem == "cifar":
      x = conv(self.width, (3, 3), padding=1)(x)
      x = nn.relu(norm()(x))
    else:
      x = conv(self.width, (7, 7), 2, padding=3)(x)
      x = nn.relu(norm()(x))
      x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = self.block(self.width * 2**i, strides, dtype=self.dtype)(x, train)
    return jnp.mean(x, axis=(1, 2))


class ConvN(nn.Module):
  """The RandBit notebook's encoder: 3 conv3x3 stride-2 layers (32, 64, 64 filters,
  conv-BN-ReLU, no bias), flatten, Dense 128-BN-ReLU. Returns [B, 128]."""

  filters: Sequence[int] = (32, 64, 64)
  features: int = 128
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype)
    conv, norm = _conv_and_norm(self.dtype, train)
    for f in self.filters:
      x = nn.relu(norm()(conv(f, (3, 3), 2, padding=1)(x)))
    x = x.reshape(x.shape[0], -1)
    return nn.relu(norm()(nn.Dense(self.features, use_bias=False, dtype=self.dtype)(x)))


class MLP(nn.Module):
  """An MLP encoder for vector observations (the latent test-bed, `data.latent`):
  `depth` x (Dense `width` - BN - ReLU), no bias. Returns [B, width]."""

  width: int = 256
  depth: int = 2
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.astype(self.dtype).reshape(x.shape[0], -1)
    _, norm = _conv_and_norm(self.dtype, train)
    for _ in range(self.depth):
      x = nn.relu(norm()(nn.Dense(self.width, use_bias=False, dtype=self.dtype)(x)))
    return x


class ProjectionHead(nn.Module):
  """Projection head: `depth` - 1 x (Dense hidden - BN - ReLU), then Dense out (no bias).

  depth 1 is a linear projection; depth 2 is SimCLR's and Chen et al.'s MLP head.
  """

  out_dim: int = 128
  hidden_dim: int = 512
  depth: int = 2
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    if self.depth < 1:
      raise ValueError(f"projection depth must be >= 1, got {self.depth}.")
    for _ in range(self.depth - 1):
      x = nn.Dense(self.hidden_dim, use_bias=False, dtype=self.dtype)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, dtype=self.dtype, **_BN)(x))
    return nn.Dense(self.out_dim, use_bias=False, dtype=self.dtype)(x)


class ContrastiveModel(nn.Module):
  """Encoder + projection head: returns (features [B, C], projections [B, out_dim])."""

  encoder: nn.Module
  head: nn.Module

  def __call__(self, x, train: bool = True):
    features = self.encoder(x, train)
    return features, self.head(features, train)


# model.dtype -> the models' computation dtype. Parameters are float32, except with
# float64 (which needs `jax_enable_x64`; for exactness checks, not for training).
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float64": jnp.float64}

ENCODERS = {
  "resnet18": functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block=BasicBlock),
  "resnet34": functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=BasicBlock),
  "resnet50": functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=Bottleneck),
  "convn": ConvN,
  "mlp": MLP,
}


def create(
  encoder: str,
  *,
  stem: str = "cifar",
  width: int = 64,
  out_dim: int = 128,
  hidden_dim: int = 512,
  head_depth: int = 2,
  dtype=jnp.float32,
) -> ContrastiveModel:
  """The encoder + head pair by name.

  Args:
    encoder: one of `ENCODERS`.
    stem, width: ResNet stem ("cifar" or "imagenet") and first-stage width
      (ignored by "convn"; the hidden width of "mlp").
    out_dim, hidden_dim, head_depth: the projection head.
    dtype: computation dtype (jnp.bfloat16 for mixed precision).
  """
  if encoder not in ENCODERS:
    raise ValueError(f"Unknown encoder {encoder!r}; valid: {', '.join(ENCODERS)}.")
  if encoder == "convn":
    enc = ConvN(dtype=dtype)
  elif encoder == "mlp":
    enc = MLP(width=width, dtype=dtype)
  else:
    enc = ENCODERS[encoder](stem=stem, width=width, dtype=dtype)
  head = ProjectionHead(out_dim=out_dim, hidden_dim=hidden_dim, depth=head_depth, dtype=dtype)
  return ContrastiveModel(enc, head)
