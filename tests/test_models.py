"""Models: parameter counts against torchvision's, shapes, dtypes, BatchNorm modes."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive import models
from contrastive import step as step_lib


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


# torchvision's totals minus the 1000-way classifier (fc: 512*1000+1000 or 2048*1000+1000);
# the CIFAR stem replaces the 7x7x3x64 conv (9,408) with a 3x3x3x64 one (1,728).
@pytest.mark.parametrize(
  "name,stem,shape,want",
  [
    ("resnet18", "imagenet", (1, 64, 64, 3), 11_689_512 - 513_000),
    ("resnet18", "cifar", (1, 32, 32, 3), 11_689_512 - 513_000 - 9_408 + 1_728),
    ("resnet34", "cifar", (1, 32, 32, 3), 21_797_672 - 513_000 - 9_408 + 1_728),
    ("resnet50", "imagenet", (1, 64, 64, 3), 25_557_032 - 2_049_000),
    # ConvN by hand: convs 288 + 18,432 + 36,864, Dense 1,024 x 128, BN 2 x (32+64+64+128).
    ("convn", "cifar", (1, 28, 28, 1), 288 + 18_432 + 36_864 + 131_072 + 576),
  ],
)
def test_encoder_parameter_counts(name, stem, shape, want):
  model = models.create(name, stem=stem)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))
  assert _count(variables["params"]["encoder"]) == want


@pytest.mark.parametrize("depth,hidden", [(1, 0), (2, 512), (3, 64)])
def test_projection_head_depth(depth, hidden):
  head = models.ProjectionHead(out_dim=16, hidden_dim=hidden or 8, depth=depth)
  variables = head.init(jax.random.key(0), jnp.ones((4, 32)), train=False)
  dense = [k for k in variables["params"] if k.startswith("Dense")]
  assert len(dense) == depth
  assert head.apply(variables, jnp.ones((4, 32)), train=False).shape == (4, 16)


@pytest.mark.heavy(seconds=17)
def test_forward_shapes_dtypes_and_batchnorm_modes():
  model = models.create("resnet18", width=8, out_dim=16, dtype=jnp.bfloat16)
  x = np.random.default_rng(1).uniform(size=(4, 32, 32, 3)).astype(np.float32)
  # Jitted, as the trainer runs it (op by op, its hundreds of ops took 20 s against 12),
  # with the trainer's options: the initial state's (LLVM level 1 on a CPU: its compile
  # took 11 s of this test at JAX's defaults) and the training programs'.
  init = jax.jit(
    model.init,
    static_argnames="train",
    compiler_options=step_lib.compiler_options("cpu", step_lib.CPU_RUN_ONCE_COMPILER_OPTIONS),
  )
  apply = jax.jit(
    model.apply,
    static_argnames=("train", "mutable"),
    compiler_options=step_lib.compiler_options("cpu"),
  )
  variables = init(jax.random.key(0), x, train=False)
  assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables["params"]))
  (feats, proj), updates = apply(variables, x, train=True, mutable=("batch_stats",))
  assert feats.shape == (4, 64) and proj.shape == (4, 16)
  assert proj.dtype == jnp.bfloat16
  changed = jax.tree.map(
    lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], updates["batch_stats"]
  )
  assert any(jax.tree.leaves(changed))  # training updates the running statistics
  f1, _ = apply(variables, x, train=False)
  f2, _ = apply(variables, x[:2], train=False)
  np.testing.assert_allclose(np.float32(f1[:2]), np.float32(f2), atol=1e-2)  # per-example in eval


def test_unknown_names_are_rejected():
  with pytest.raises(ValueError, match="resnet18, resnet34, resnet50, convn"):
    models.create("resnet19")
  with pytest.raises(ValueError, match="cifar, imagenet"):
    models.create("resnet18", stem="tiny").init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))


_NHWC = ("NHWC", "HWIO", "NHWC")  # the models' convolution layout


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_conv_stored_once_is_the_same_convolution(dtype):
  # The CPU's stored-input convolution against lax's: values and both gradients, bit for bit.
  # NumPy's normals: jax.random.normal op by op compiled a program per shape (~1.7 s each).
  rng = np.random.default_rng(0)
  x, w, ct = (jnp.asarray(rng.normal(size=s), dtype) for s in ((4, 9, 9, 5), (3, 3, 5, 6),
                                                                 (4, 5, 5, 6)))  # fmt: skip

  def vjp(conv):
    f = lambda x, w: conv(x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_NHWC)
    y, back = jax.vjp(f, x, w)
    return (y, *back(ct))

  ours = jax.jit(lambda: vjp(models.conv_general_dilated))()
  lax_ = jax.jit(lambda: vjp(jax.lax.conv_general_dilated))()
  for a, b in zip(ours, lax_, strict=True):
    assert a.dtype == dtype
    np.testing.assert_array_equal(np.float32(a), np.float32(b))


def _transposes_recompute_the_chain(conv) -> bool:
  """Whether XLA's compiled CPU gradient of a conv-BN-ReLU residual chain, with `conv`
  as its convolutions, recomputes a ReLU inside a transposing copy (the kernels'
  gradients read their inputs as [C, H, W, N])."""

  def layer(x, w):
    z = conv(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_NHWC)
    return (z - jnp.mean(z, axis=(0, 1, 2))) * jax.lax.rsqrt(jnp.var(z, axis=(0, 1, 2)) + 1e-5)

  def loss(ws, x):
    y = jax.nn.relu(layer(x, ws[0]))
    y = jax.nn.relu(y + layer(y, ws[1]))
    y = jax.nn.relu(y + layer(y, ws[2]))
    return jnp.sum(layer(y, ws[3]) ** 2)

  ws = [jnp.ones((3, 3, 16, 16)) / 100] * 4
  x = jnp.ones((8, 8, 8, 16))
  hlo = jax.jit(jax.grad(loss)).lower(ws, x).compile().as_text()
  fused = [c for c in hlo.split("\n\n") if c.startswith("%fused")]  # a computation a paragraph
  op = lambda name: re.compile(rf"= \S+ {name}\(")  # the instruction, not a name in metadata
  return any(op("transpose").search(c) and op("maximum").search(c) for c in fused)


def test_conv_input_is_stored_once_on_cpu():
  # The reason for models.conv_general_dilated: with lax's convolution XLA recomputes the
  # chain inside the transposing copies (strided reads, a third of a CPU ResNet step).
  assert _transposes_recompute_the_chain(jax.lax.conv_general_dilated)
  assert not _transposes_recompute_the_chain(models.conv_general_dilated)


def test_conv_is_lax_itself_on_other_platforms():
  # GPU and TPU programs hold no division: lowered here for those platforms (no device needed).
  conv = lambda x, w: models.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_NHWC)
  grad = jax.jit(jax.grad(lambda x, w: conv(x, w).sum(), argnums=(0, 1)))
  traced = grad.trace(jnp.ones((2, 4, 4, 3)), jnp.ones((3, 3, 3, 4)))
  assert "divide" in traced.lower(lowering_platforms=("cpu",)).as_text()
  for platform in ("cuda", "rocm", "tpu"):
    assert "divide" not in traced.lower(lowering_platforms=(platform,)).as_text()
