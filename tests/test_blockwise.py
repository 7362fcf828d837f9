"""The blockwise (tiled) kernels against the dense ones and a NumPy reference.

The dense kernels are themselves checked against float64 NumPy and the papers'
closed forms (test_losses.py); here the blockwise ones must give the same losses
and gradients, with respect to both views and the temperature, to 1e-5 relative,
at 2N = 512 and 4096, for block sizes that divide 2N and that do not.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive import blockwise
from contrastive import config as config_lib
from contrastive import losses
from contrastive import objective
from contrastive import recipes

TAUS = (0.01, 0.2, 1.0)


def _views(n2, d=32, seed=0, noise=0.5):
  rng = np.random.default_rng(seed)
  z1 = rng.normal(size=(n2 // 2, d)).astype(np.float32)
  return z1, (z1 + noise * rng.normal(size=z1.shape)).astype(np.float32)


def _value_and_grads(fn):
  """jit(value_and_grad) of fn(z1, z2, tau) in all three, tau traced."""
  return jax.jit(jax.value_and_grad(fn, argnums=(0, 1, 2)))


def _assert_close(got, want, rtol=1e-5):
  (v_got, g_got), (v_want, g_want) = got, want
  np.testing.assert_allclose(v_got, v_want, rtol=rtol)
  for a, b, name in zip(g_got, g_want, ("z1", "z2", "tau"), strict=True):
    scale = np.max(np.abs(b))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, err_msg=name)


def _nt_xent(block_size):
  return lambda a, b, t: losses.nt_xent(a, b, temperature=t, block_size=block_size)


def _logsumexp(block_size):
  return lambda a, b, t: losses.generalized_contrastive_loss(
    a, b, distribution="logsumexp", weight=0.5, temperature=t, block_size=block_size
  )


def _max_error(got, want):
  """Largest error of value and of each gradient, relative to its largest entry."""
  (v_got, g_got), (v_want, g_want) = got, want
  errs = [abs(float(v_got) - float(v_want)) / abs(float(v_want))]
  for a, b in zip(g_got, g_want, strict=True):
    a, b = np.float64(a), np.float64(b)
    errs.append(np.max(np.abs(a - b)) / np.max(np.abs(b)))
  return np.asarray(errs)


def _macl(block_size, schedule="linear", alpha=0.5):
  return lambda a, b, t: losses.macl_nt_xent(
    a, b, temperature=t, alpha=alpha, schedule=schedule, block_size=block_size
  )


def _macl_exponential(block_size):
  return _macl(block_size, "exponential", 2.0)


@pytest.mark.parametrize("n2,block", [(512, 128), (4096, 1000)], ids=str)
@pytest.mark.parametrize(
  "loss",
  [_nt_xent, _logsumexp, _macl, _macl_exponential],
  ids=["nt_xent", "logsumexp", "macl_linear", "macl_exponential"],
)
def test_blockwise_equals_dense(n2, block, loss):
  z1, z2 = _views(n2)
  with jax.enable_x64(True):  # the same mathematics: equal to float64 rounding
    z1_64, z2_64 = np.float64(z1), np.float64(z2)
    exact = _value_and_grads(loss(None))
    tiled = _value_and_grads(loss(block))
    want = {tau: exact(z1_64, z2_64, tau) for tau in TAUS}
    for tau in TAUS:
      _assert_close(tiled(z1_64, z2_64, tau), want[tau], rtol=1e-10)
  # In float32: within 1e-5 of the exact values, or no further from them than the
  # dense float32 kernel is. (Chen et al.'s logsumexp term includes each row's
  # self-similarity, so at tau = 0.01 its gradient is a difference of terms ~1/tau
  # that normalisation cancels: dense float32 itself is ~1e-4 off there.)
  dense, tiled = _value_and_grads(loss(None)), _value_and_grads(loss(block))
  for tau in TAUS:
    err_tiled = _max_error(tiled(z1, z2, tau), want[tau])
    err_dense = _max_error(dense(z1, z2, tau), want[tau])
    assert np.all(err_tiled <= np.maximum(1e-5, 1.5 * err_dense)), (tau, err_tiled, err_dense)


def _reference_row_lse(rows, cols, shift, tau, mask):
  """float64 NumPy: the full matrix, masked, log-sum-exp per row."""
  rows, cols = np.float64(rows), np.float64(cols)
  x = (rows @ cols.T - np.float64(shift)[:, None]) / tau
  m, k = x.shape
  i, j = np.arange(m)[:, None], np.arange(k)[None, :]
  valid = np.ones_like(x, bool)
  if mask != "all":
    valid &= i != j
  if mask == "not_self_or_partner":
    valid &= j != (i + m // 2) % m
  x = np.where(valid, x, -np.inf)
  top = np.max(x, axis=1, keepdims=True)
  return (top + np.log(np.sum(np.exp(x - top), axis=1, keepdims=True)))[:, 0]


@pytest.mark.parametrize("mask", blockwise.MASKS)
def test_row_logsumexp_matches_numpy(mask):
  rng = np.random.default_rng(3)
  rows = rng.normal(size=(70, 8)).astype(np.float32) / 3
  cols = rows if mask != "all" else rng.normal(size=(45, 8)).astype(np.float32) / 3
  shift = rng.uniform(-1, 1, 70).astype(np.float32)
  for tau in TAUS:
    got = blockwise.row_logsumexp(rows, cols, shift, tau, block_size=16, mask=mask)
    want = _reference_row_lse(rows, cols, shift, tau, mask)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 / tau)


def test_float64_inputs_stay_float64():
  with jax.enable_x64(True):
    z1, z2 = (np.float64(z) for z in _views(64))
    dense, tiled = _value_and_grads(_nt_xent(None)), _value_and_grads(_nt_xent(24))
    got = tiled(z1, z2, 0.1)
    assert got[0].dtype == jnp.float64
    _assert_close(got, dense(z1, z2, 0.1), rtol=1e-12)


@pytest.mark.parametrize("positive_at", [1.0, -1.0])
def test_finite_at_tau_001_with_extreme_similarities_in_bfloat16(positive_at):
  # Views along +-e0, +-e1: every similarity is exactly +1, -1 or 0.
  e = np.eye(2, dtype=np.float32)
  z1 = jnp.asarray(np.stack([e[0], -e[0], e[1], -e[1]]), jnp.bfloat16)
  z2 = z1 if positive_at > 0 else -z1
  for loss in (_nt_xent(3), _logsumexp(3), _macl(3)):
    value, grads = _value_and_grads(loss)(z1, z2, 0.01)
    assert value.dtype == jnp.float32
    assert np.isfinite(value) and all(np.all(np.isfinite(np.float32(g))) for g in grads)
  dense = _value_and_grads(_nt_xent(None))(z1, z2, 0.01)
  _assert_close(_value_and_grads(_nt_xent(3))(z1, z2, 0.01), dense)


def test_vmap_over_temperatures_equals_each_temperature():
  z1, z2 = _views(96)
  taus = jnp.asarray(TAUS)
  tiled = jax.vmap(jax.value_and_grad(_nt_xent(40), argnums=(0, 1, 2)), in_axes=(None, None, 0))
  values, (g1, g2, gt) = jax.jit(tiled)(z1, z2, taus)
  dense = _value_and_grads(_nt_xent(None))
  for i, tau in enumerate(TAUS):
    _assert_close((values[i], (g1[i], g2[i], gt[i])), dense(z1, z2, tau))


def test_one_pair_has_no_negatives_and_zero_loss():
  z1, z2 = _views(2)
  value, grads = _value_and_grads(_nt_xent(4))(z1, z2, 0.2)
  assert value == 0 and all(np.all(g == 0) for g in grads)


@pytest.mark.parametrize(
  "kwargs,message",
  [
    (dict(block_size=0), "block_size must be a positive integer"),
    (dict(block_size=8, mask="diagonal"), "Unknown mask 'diagonal'"),
  ],
)
def test_bad_arguments_are_rejected(kwargs, message):
  rows = jnp.ones((6, 4))
  with pytest.raises(ValueError, match=message):
    blockwise.row_logsumexp(rows, rows, jnp.zeros(6), 0.2, **kwargs)


@pytest.mark.parametrize("name", ["contrastive", "macl", "generalized"])
def test_objective_blockwise_equals_dense_with_its_statistics(name):
  cfg = recipes.quickstart().loss
  cfg.name = name
  z1, z2 = (jnp.asarray(z) for z in _views(64))
  dense_loss, dense_stats = objective.objective(cfg, z1, z2, indices=None, bank=None, key=None)
  cfg.block_size = 24
  loss, stats = jax.jit(
    lambda a, b: objective.objective(cfg, a, b, indices=None, bank=None, key=None)
  )(z1, z2)
  np.testing.assert_allclose(loss, dense_loss, rtol=1e-6)
  for key in stats:  # the closed-form mean negative similarity too
    np.testing.assert_allclose(stats[key], dense_stats[key], rtol=1e-5, atol=1e-6, err_msg=key)
  assert "neg_sim" in stats and "penalty_entropy" not in stats


@pytest.mark.parametrize(
  "overrides,message",
  [
    ("loss.block_size=0", "loss.block_size must be a positive integer"),
    ("loss.block_size=64,loss.name=hard_contrastive", "loss.block_size tiles NT-Xent and MACL"),
    ("loss.block_size=64,loss.layout=cross_view", "loss.block_size tiles NT-Xent and MACL"),
  ],
)
def test_config_check_names_what_block_size_supports(overrides, message):
  c = config_lib.apply(recipes.quickstart(), config_lib.parse(overrides))
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.check(c)
