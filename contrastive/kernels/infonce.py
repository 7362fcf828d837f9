"""The InfoNCE family on similarities: the contrastive loss, DCL, the hard and simple
losses and the relative penalty.

Each kernel takes `pos: [N]` (each anchor's positive similarity s_ii), `neg: [N, K]`
(its candidate negatives s_ik) and an optional `neg_mask: [N, K]` (False = not a
negative of that anchor), and returns the per-anchor loss [N]. `prepare` and
`log_odds` are the pieces the other families (MACL, the views-level losses) build on.
"""

import math

import jax
import jax.numpy as jnp

from contrastive import numerics

# The hard contrastive loss of Wang & Liu uses "4095 negative samples" (alpha =
# 0.0819 of CIFAR's 50,000 instances). Used by configs; the kernels take num_hard.
DEFAULT_NUM_HARD = 4095


def prepare(pos, neg, neg_mask):
  """Validates shapes and returns compute-dtype `pos`, `neg` and a bool mask."""
  pos, neg = numerics.as_compute(pos), numerics.as_compute(neg)
  if pos.ndim != 1 or neg.ndim != 2 or neg.shape[0] != pos.shape[0]:
    raise ValueError(f"pos must be [N] and neg [N, K], got pos {pos.shape} and neg {neg.shape}.")
  if neg_mask is None:
    neg_mask = jnp.ones(neg.shape, dtype=bool)
  else:
    neg_mask = jnp.asarray(neg_mask)
    if neg_mask.shape != neg.shape:
      raise ValueError(f"neg_mask must have neg's shape {neg.shape}, got {neg_mask.shape}.")
    neg_mask = neg_mask.astype(bool)
  return pos, neg, neg_mask


def log_odds(pos, neg, neg_mask, temperature):
  """d_i = log((1 - P_i) / P_i) = logsumexp_{k valid}((s_ik - s_ii) / tau).

  The differences are taken before dividing by tau, so no large s/tau terms
  cancel; then L_i = softplus(d_i) is accurate even when the loss is ~1e-6 (the
  form logsumexp(...) - s_ii/tau loses ~1e-6 absolute to cancellation at tau = 0.07).

  Returns:
    d: [N], finite (0 for an anchor with no valid negative, so that its
      gradient is finite too); has_neg: [N] bool.
  """
  has_neg = jnp.any(neg_mask, axis=-1)
  t = per_anchor(temperature, pos.dtype)
  x = jnp.where(neg_mask, (neg - pos[:, None]) / t, -jnp.inf)
  x = jnp.where(has_neg[:, None], x, 0.0)
  # Every row now has a finite entry, so a plain max-shift suffices; it is ~25%
  # faster than jax.nn.logsumexp (whose inf handling is not needed) at 2N = 2048.
  m = jax.lax.stop_gradient(jnp.max(x, axis=-1))
  return m + jnp.log(jnp.sum(jnp.exp(x - m[:, None]), axis=-1)), has_neg


def per_anchor(temperature, dtype):
  """A scalar temperature, or one per anchor [N] as a column [N, 1] against [N, K]."""
  t = jnp.asarray(temperature, dtype)
  return t[:, None] if t.ndim == 1 else t


def contrastive_loss(pos, neg, *, temperature, neg_mask=None) -> jax.Array:
  """The contrastive (InfoNCE) loss of each anchor.

  L_i = -log( exp(s_ii/tau) / (exp(s_ii/tau) + sum_{k valid} exp(s_ik/tau)) ).

  Args:
    pos: [N] positive similarities s_ii.
    neg: [N, K] negative similarities s_ik.
    temperature: tau > 0, a Python or traced scalar.
    neg_mask: optional [N, K] bool, False where `neg` is not a negative.
      (`temperature` may also be [N], anchor i's tau_i.)

  Returns:
    [N] per-anchor losses.

  References:
    Wang & Liu, "Understanding the Behaviour of Contrastive Loss", CVPR 2021, Eq. 1.
  """
  numerics.check_positive("temperature", temperature)
  pos, neg, neg_mask = prepare(pos, neg, neg_mask)
  d, has_neg = log_odds(pos, neg, neg_mask, temperature)
  return jnp.where(has_neg, jax.nn.softplus(d), 0.0)


def dcl_loss(pos, neg, *, temperature, neg_mask=None) -> jax.Array:
  """The decoupled contrastive loss (DCL) of each anchor: the positive is removed from
  the denominator.

  L_i = -s_ii / tau + log sum_{k valid} exp(s_ik / tau) = log_odds_i, the
  log-sum-exp of (s_ik - s_ii) / tau: InfoNCE is softplus of the same d_i. Without
  the positive in the denominator, the gradient's weight on the positive no longer
  shrinks as the positive wins (Yeh et al.'s "negative-positive coupling"), so the
  loss has no floor at 0: it goes negative as s_ii grows past the negatives.

  Args:
    pos: [N] positive similarities s_ii.
    neg: [N, K] negative similarities s_ik.
    temperature: tau > 0, a Python or traced scalar (or [N], one per anchor).
    neg_mask: optional [N, K] bool, False where `neg` is not a negative.

  Returns:
    [N] per-anchor losses (0 for an anchor with no valid negative).

  References:
    Yeh et al., "Decoupled Contrastive Learning", ECCV 2022, Eq. 6 (without the
    weighting function w).
  """
  numerics.check_positive("temperature", temperature)
  pos, neg, neg_mask = prepare(pos, neg, neg_mask)
  d, has_neg = log_odds(pos, neg, neg_mask, temperature)
  return jnp.where(has_neg, d, 0.0)


def resolve_num_hard(num_negatives: int, *, num_hard=None, hard_fraction=None) -> int:
  """The number of hard negatives kept per anchor, from exactly one of two forms.

  Args:
    num_negatives: K, the number of candidate negatives (columns of `neg`).
    num_hard: keep the `num_hard` most similar negatives; values above K keep all
      K (the top 4095 of fewer than 4095 negatives are all of them).
    hard_fraction: alpha in (0, 1], the paper's upper quantile; keeps
      ceil(alpha * K) (0.0819 of 50,000 gives 4095).

  Returns:
    The number of columns kept, between 1 and K.
  """
  if (num_hard is None) == (hard_fraction is None):
    raise ValueError(
      "Give exactly one of num_hard and hard_fraction, got "
      f"num_hard={num_hard!r}, hard_fraction={hard_fraction!r}."
    )
  if hard_fraction is not None:
    if not 0 < hard_fraction <= 1:
      raise ValueError(f"hard_fraction must be in (0, 1], got {hard_fraction!r}.")
    # Rounded first so that float noise (0.0819 * 50000 = 4095.0000000000005 in
    # some orders of evaluation) cannot add one negative.
    num_hard = math.ceil(round(hard_fraction * num_negatives, 6))
  if isinstance(num_hard, bool) or not isinstance(num_hard, int) or num_hard < 1:
    raise ValueError(f"num_hard must be an integer >= 1, got {num_hard!r}.")
  return max(1, min(num_hard, num_negatives))


def _hardest(neg, neg_mask, num_hard):
  """Each anchor's `num_hard` most similar valid negatives, as a narrower mask.

  Selection is by value (a set choice with no gradient of its own); the gradient
  flows to the selected entries of `neg` only. An anchor with fewer valid
  negatives than `num_hard` keeps them all. Returns (neg, mask): the kept entries
  are mask's True ones (the same set as `jax.lax.top_k`, ties by position).
  """
  candidates = jnp.where(neg_mask, neg, -jnp.inf)
  return neg, neg_mask & numerics.top_k_mask(candidates, num_hard)


def hard_contrastive_loss(
  pos, neg, *, temperature, num_hard=None, hard_fraction=None, neg_mask=None
) -> jax.Array:
  """The hard contrastive loss: only the hardest negatives enter the denominator.

  L_i = -log( exp(s_ii/tau) / (exp(s_ii/tau) + sum_{s_ik >= s_alpha} exp(s_ik/tau)) ),
  with s_alpha the similarity of anchor i's `num_hard`-th most similar valid
  negative. Exactly `num_hard` negatives are kept (ties at s_alpha broken by
  position), so with `num_hard = K` this equals `contrastive_loss`.

  Args:
    pos: [N] positive similarities.
    neg: [N, K] negative similarities.
    temperature: tau > 0.
    num_hard: number of hardest negatives kept (the paper: 4095).
    hard_fraction: alpha; keeps ceil(alpha * K). Give exactly one of the two.
    neg_mask: optional [N, K] bool.

  Returns:
    [N] per-anchor losses.

  References:
    Wang & Liu, CVPR 2021, Eq. 9 and Sec. 5.
  """
  numerics.check_positive("temperature", temperature)
  pos, neg, neg_mask = prepare(pos, neg, neg_mask)
  k = resolve_num_hard(neg.shape[1], num_hard=num_hard, hard_fraction=hard_fraction)
  hard, hard_mask = _hardest(neg, neg_mask, k)
  return contrastive_loss(pos, hard, temperature=temperature, neg_mask=hard_mask)


def simple_loss(pos, neg, *, weight=None, neg_mask=None) -> jax.Array:
  """The simple loss, with no hardness awareness: L_i = -s_ii + w * sum_k s_ik.

  Args:
    pos: [N] positive similarities.
    neg: [N, K] negative similarities.
    weight: lambda; default 1 / (number of valid negatives of the anchor), the
      tau -> infinity limit of the contrastive loss up to scale. The paper does not
      give lambda.
    neg_mask: optional [N, K] bool.

  Returns:
    [N] per-anchor losses.

  References:
    Wang & Liu, CVPR 2021, Eq. 3.
  """
  pos, neg, neg_mask = prepare(pos, neg, neg_mask)
  neg_sum = jnp.sum(jnp.where(neg_mask, neg, 0.0), axis=-1)
  if weight is None:
    weight = 1.0 / jnp.maximum(jnp.sum(neg_mask, axis=-1), 1).astype(pos.dtype)
  return -pos + weight * neg_sum


def hard_simple_loss(
  pos, neg, *, weight=None, num_hard=None, hard_fraction=None, neg_mask=None
) -> jax.Array:
  """HardSimple: the simple loss over each anchor's hardest negatives only.

  Args:
    pos: [N] positive similarities.
    neg: [N, K] negative similarities.
    weight: lambda; default 1 / num_hard (precisely, 1 / the number of valid
      negatives kept, which is num_hard unless an anchor has fewer valid ones), so
      `num_hard = K` gives `simple_loss`.
    num_hard, hard_fraction: as in `hard_contrastive_loss`; exactly one.
    neg_mask: optional [N, K] bool.

  Returns:
    [N] per-anchor losses.

  References:
    Wang & Liu, CVPR 2021, Table 1 ("HardSimple").
  """
  pos, neg, neg_mask = prepare(pos, neg, neg_mask)
  k = resolve_num_hard(neg.shape[1], num_hard=num_hard, hard_fraction=hard_fraction)
  hard, hard_mask = _hardest(neg, neg_mask, k)
  return simple_loss(pos, hard, weight=weight, neg_mask=hard_mask)


def relative_penalty(pos, neg, *, temperature, neg_mask=None) -> jax.Array:
  """Wang & Liu's relative penalty on each negative, from gradients.

  r_i(s_ij) = |dL_i/ds_ij| / |dL_i/ds_ii|, taken with `jax.grad` of
  `contrastive_loss`; the closed form is exp(s_ij/tau) / sum_k exp(s_ik/tau), a
  Boltzmann distribution over each anchor's valid negatives (rows sum to 1).

  Eq. 5 does not depend on s_ii, so the gradients are taken at
  s_ii = max_k s_ik, where |dL_i/ds_ii| >= 1 / (2 tau): at the true s_ii both
  gradients underflow in float32 once s_ii - s_max exceeds about 87 tau (0.9 at
  tau = 0.01) and their ratio becomes 0 / 0.

  Args:
    pos: [N] positive similarities (enter only through the shape: r is
      independent of them).
    neg: [N, K] negative similarities.
    temperature: tau > 0.
    neg_mask: optional [N, K] bool.

  Returns:
    [N, K] relative penalties, 0 where masked (and on anchors with no negative).

  References:
    Wang & Liu, CVPR 2021, Eqs. 4-5 and Fig. 3.
  """
  numerics.check_positive("temperature", temperature)
  pos, neg, neg_mask = prepare(pos, neg, neg_mask)
  s_max = jnp.max(jnp.where(neg_mask, neg, -jnp.inf), axis=-1)
  at = jax.lax.stop_gradient(jnp.where(jnp.isfinite(s_max), s_max, pos))

  def total_loss(p, n):
    return jnp.sum(contrastive_loss(p, n, temperature=temperature, neg_mask=neg_mask))

  g_pos, g_neg = jax.grad(total_loss, argnums=(0, 1))(at, neg)
  denom = jnp.abs(g_pos)[:, None]
  safe = jnp.where(denom > 0, denom, 1.0)
  return jnp.where(neg_mask & (denom > 0), jnp.abs(g_neg) / safe, 0.0)
