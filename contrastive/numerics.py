"""Numerical helpers shared by the loss kernels and the metrics.

Every loss and metric in this package computes in at least float32, whatever the
dtype of its inputs (bfloat16 activations included): `compute_dtype` promotes,
never demotes, so float64 inputs stay float64 when `jax_enable_x64` is on.
"""

import jax
import jax.numpy as jnp
import numpy as np

# Smallest norm divided by in `l2_normalize`; a zero vector stays zero.
_NORM_EPS = 1e-12


def as_compute(x: jax.typing.ArrayLike) -> jax.Array:
  """Returns `x` as an array of at least float32 precision."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def l2_normalize(z: jax.typing.ArrayLike, axis: int = -1) -> jax.Array:
  """L2-normalises `z` along `axis` in at least float32.

  The norm is clamped below by 1e-12 through the squared norm, so the gradient at
  a zero vector is finite (`jnp.linalg.norm`'s is NaN there).
  """
  z = as_compute(z)
  sq = jnp.sum(jnp.square(z), axis=axis, keepdims=True)
  return z * jax.lax.rsqrt(jnp.maximum(sq, _NORM_EPS**2))


def check_positive(name: str, value) -> None:
  """Raises ValueError if a concrete `value` is not > 0; tracers pass unchecked.

  Hyperparameters such as the temperature may be traced (an analysis vmapped over
  a temperature grid), and a traced value cannot be inspected; a concrete one is
  checked here, before any compute.
  """
  if isinstance(value, jax.core.Tracer):
    return
  arr = np.asarray(value)
  if not np.all(arr > 0):
    raise ValueError(f"{name} must be > 0, got {value!r}.")
