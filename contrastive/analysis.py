"""Analyses of the contrastive loss over a grid of temperatures.

Wang & Liu's argument, as functions one can evaluate: the loss's gradient puts a
Boltzmann distribution over the negatives (the relative penalty, Eq. 5) whose
entropy falls as the temperature falls; tau -> 0 gives a triplet loss on the
nearest negative (Eq. 6) and tau -> infinity the simple loss (Eq. 3). Everything
here is `jax.vmap` over the temperature, so a whole grid is one compiled program.
"""

import jax
import jax.numpy as jnp

from contrastive import losses
from contrastive import numerics

# The temperatures of Wang & Liu's Table 1 and figures.
PAPER_TEMPERATURES = (0.07, 0.2, 0.3, 0.5, 0.7, 1.0)


def over_temperatures(fn, temperatures, *args, **kwargs) -> jax.Array:
  """`fn(*args, temperature=tau, **kwargs)` for each tau, stacked on a new axis 0.

  Example: `over_temperatures(losses.contrastive_loss, taus, pos, neg)` is [T, N].
  """
  temperatures = jnp.asarray(temperatures, jnp.float32)
  numerics.check_positive("temperatures", temperatures)
  return jax.vmap(lambda t: fn(*args, temperature=t, **kwargs))(temperatures)


def relative_penalty_curves(temperatures, *, num_points=201):
  """Relative penalty r(s) of negatives spread uniformly over s in [-1, 1].

  The paper's Fig. 3 plots r against s for several tau but does not say which set
  of negatives normalises r; we take `num_points` negatives evenly spaced in
  [-1, 1] (one anchor), so each curve sums to 1 over the grid. The shape in s,
  exp(s / tau) up to a constant, does not depend on this choice.

  Args:
    temperatures: [T] temperatures.
    num_points: M, the number of negatives on the grid.

  Returns:
    s: [M] similarities; r: [T, M] relative penalties from `losses.relative_penalty`.
  """
  s = jnp.linspace(-1.0, 1.0, num_points)
  r = over_temperatures(losses.relative_penalty, temperatures, jnp.ones(1), s[None, :])
  return s, r[:, 0, :]


def penalty_entropy(pos, neg, *, temperature, neg_mask=None) -> jax.Array:
  """Entropy of each anchor's relative-penalty distribution over its negatives.

  H_i = -sum_j r_ij log r_ij, in nats; at most log(number of valid negatives)
  (tau -> infinity), falling to 0 as tau -> 0 (all penalty on the nearest one).

  Args:
    pos: [N]; neg: [N, K]; temperature: tau; neg_mask: optional [N, K] bool.

  Returns:
    [N] entropies. Vmap over tau with `over_temperatures`.

  References:
    Wang & Liu, CVPR 2021, Sec. 3.2 ("the entropy of the distribution decreases
    strictly as tau decreases").
  """
  r = losses.relative_penalty(pos, neg, temperature=temperature, neg_mask=neg_mask)
  return -jnp.sum(jax.scipy.special.xlogy(r, r), axis=-1)


def small_temperature_limit(pos, neg, *, temperature, neg_mask=None) -> jax.Array:
  """The tau -> 0+ limit of the contrastive loss: (1/tau) max(s_max - s_ii, 0).

  A triplet loss with margin 0 on the nearest negative (Eq. 6). The gap to
  `contrastive_loss` is in [0, log(K + 1)], so tau * loss converges to
  max(s_max - s_ii, 0) as tau -> 0.

  Returns:
    [N] per-anchor limits (0 for an anchor with no valid negative).

  References:
    Wang & Liu, CVPR 2021, Eq. 6.
  """
  pos, neg = numerics.as_compute(pos), numerics.as_compute(neg)
  mask = jnp.ones(neg.shape, bool) if neg_mask is None else neg_mask
  s_max = jnp.max(jnp.where(mask, neg, -jnp.inf), axis=-1)
  return jnp.maximum(s_max - pos, 0.0) / temperature


def large_temperature_limit(pos, neg, *, temperature, neg_mask=None) -> jax.Array:
  """The first-order tau -> infinity expansion of the contrastive loss.

  -(M-1)/(M tau) s_ii + 1/(M tau) sum_k s_ik + log M, with M = 1 + the number of
  valid negatives of the anchor: the simple loss with lambda = 1/(M-1), scaled by
  (M-1)/(M tau), plus a constant.

  Returns:
    [N] per-anchor values.

  References:
    Wang & Liu, CVPR 2021, Sec. 3.2 (the limit tau -> +infinity).
  """
  pos, neg = numerics.as_compute(pos), numerics.as_compute(neg)
  mask = jnp.ones(neg.shape, bool) if neg_mask is None else neg_mask
  m = 1 + jnp.sum(mask, axis=-1).astype(pos.dtype)
  neg_sum = jnp.sum(jnp.where(mask, neg, 0.0), axis=-1)
  return (-(m - 1) * pos + neg_sum) / (m * temperature) + jnp.log(m)
