"""Temperature analyses: vmapped grids, entropy, and the two limits."""

import jax
import jax.numpy as jnp
import numpy as np

from contrastive import analysis
from contrastive import losses
from tests import reference
from tests.test_losses import _similarities


def test_over_temperatures_equals_a_loop():
  pos, neg, mask = _similarities(0)
  taus = [0.01, 0.07, 0.5, 3.0]
  grid = jax.jit(
    lambda t: analysis.over_temperatures(losses.contrastive_loss, t, pos, neg, neg_mask=mask)
  )(jnp.asarray(taus))
  for row, tau in zip(grid, taus, strict=True):
    np.testing.assert_allclose(
      row, losses.contrastive_loss(pos, neg, temperature=tau, neg_mask=mask), rtol=1e-6
    )


def test_relative_penalty_curves_equal_the_closed_form():
  taus = [0.07, 0.2, 1.0]
  s, r = jax.jit(analysis.relative_penalty_curves, static_argnames="num_points")(
    jnp.asarray(taus), num_points=101
  )
  for row, tau in zip(r, taus, strict=True):
    want = reference.relative_penalty(np.asarray(s)[None, :], tau)[0]
    np.testing.assert_allclose(row, want, atol=1e-7, rtol=1e-5)
  # Steeper toward s = 1 as tau falls: the nearest negative's share grows.
  assert np.all(np.diff(np.asarray(r)[:, -1]) < 0)


def test_penalty_entropy_falls_monotonically_as_tau_falls():
  pos, neg, mask = _similarities(1, k=64)
  taus = np.geomspace(0.01, 10.0, 60)
  h = np.asarray(
    analysis.over_temperatures(analysis.penalty_entropy, taus, pos, neg, neg_mask=mask)
  )
  assert h.shape == (60, len(pos))
  assert np.all(np.diff(h, axis=0) > 0)
  for i in (0, 30, 59):
    r = reference.relative_penalty(neg, taus[i], mask)
    want = -np.sum(np.where(r > 0, r * np.log(np.where(r > 0, r, 1)), 0), axis=1)
    np.testing.assert_allclose(h[i], want, rtol=1e-4, atol=1e-6)
  # Bounded by log(number of valid negatives), approached as tau grows.
  np.testing.assert_array_less(h[-1], np.log(mask.sum(axis=1)) + 1e-6)


def test_limits_bracket_the_loss():
  pos, neg, mask = _similarities(2)
  k = neg.shape[1]
  for tau in (0.001, 0.01):
    loss = losses.contrastive_loss(pos, neg, temperature=tau, neg_mask=mask)
    lim = analysis.small_temperature_limit(pos, neg, temperature=tau, neg_mask=mask)
    gap = np.asarray(loss - lim)
    assert np.all(gap >= -1e-3) and np.all(gap <= np.log(k + 1) + 1e-3)
  errors = []
  for tau in (10.0, 100.0, 1000.0):
    loss = losses.contrastive_loss(pos, neg, temperature=tau, neg_mask=mask)
    lim = analysis.large_temperature_limit(pos, neg, temperature=tau, neg_mask=mask)
    errors.append(float(np.max(np.abs(loss - lim))))
  # Second-order remainder: O(1/tau^2), so 10x tau cuts the error ~100x.
  assert errors[0] < 1e-2 and errors[1] < errors[0] / 30, errors
