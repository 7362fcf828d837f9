"""Contrastive loss kernels: pure, jit-, grad- and vmap-compatible.

Two levels:

* Similarity level. `pos: [N]` holds each anchor's positive similarity s_ii,
  `neg: [N, K]` its candidate negative similarities s_ik, and the optional
  `neg_mask: [N, K]` (bool, False = not a negative of that anchor) says which of
  them count. Each kernel returns the per-anchor loss `[N]`; reduce it as you like.
  `contrastive.pairs` builds these arrays for SimCLR's in-batch layout, the
  cross-view layout and an NPID memory bank.
* Embedding level. `z1, z2: [N, D]` views, L2-normalised inside; each returns a
  scalar (`nt_xent`, `generalized_contrastive_loss`).

Hyperparameters are keyword-only. `temperature` may be a traced scalar, so an
analysis can `jax.vmap` a kernel over a temperature grid; a concrete one must be
> 0 (checked before any compute). The similarity-level contrastive kernels
(`contrastive_loss`, `hard_contrastive_loss`, `relative_penalty`) also take one
temperature per anchor, `[N]` (a learned per-sample temperature). Every kernel
computes in float32 (or float64 for float64 inputs) whatever its input dtype, and
every softmax-type kernel is max-shifted, so it is finite at temperature 0.01 with
similarities at exactly +1 and -1, in float32 and with bfloat16 inputs.
"""

import math

import jax
import jax.numpy as jnp

from contrastive import blockwise
from contrastive import numerics
from contrastive import pairs

# The hard contrastive loss of Wang & Liu uses "4095 negative samples" (alpha =
# 0.0819 of CIFAR's 50,000 instances). Used by configs; the kernels take num_hard.
DEFAULT_NUM_HARD = 4095

MACL_SCHEDULES = ("linear", "exponential")


def _prepare(pos, neg, neg_mask):
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


def _log_odds(pos, neg, neg_mask, temperature):
  """d_i = log((1 - P_i) / P_i) = logsumexp_{k valid}((s_ik - s_ii) / tau).

  The differences are taken before dividing by tau, so no large s/tau terms
  cancel; then L_i = softplus(d_i) is accurate even when the loss is ~1e-6 (the
  form logsumexp(...) - s_ii/tau loses ~1e-6 absolute to cancellation at tau = 0.07).

  Returns:
    d: [N], finite (0 for an anchor with no valid negative, so that its
      gradient is finite too); has_neg: [N] bool.
  """
  has_neg = jnp.any(neg_mask, axis=-1)
  t = _per_anchor(temperature, pos.dtype)
  x = jnp.where(neg_mask, (neg - pos[:, None]) / t, -jnp.inf)
  x = jnp.where(has_neg[:, None], x, 0.0)
  # Every row now has a finite entry, so a plain max-shift suffices; it is ~25%
  # faster than jax.nn.logsumexp (whose inf handling is not needed) at 2N = 2048.
  m = jax.lax.stop_gradient(jnp.max(x, axis=-1))
  return m + jnp.log(jnp.sum(jnp.exp(x - m[:, None]), axis=-1)), has_neg


def _per_anchor(temperature, dtype):
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
  pos, neg, neg_mask = _prepare(pos, neg, neg_mask)
  d, has_neg = _log_odds(pos, neg, neg_mask, temperature)
  return jnp.where(has_neg, jax.nn.softplus(d), 0.0)


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
  """The `num_hard` most similar valid negatives of each anchor, and their mask.

  Selection is by value (a set choice with no gradient of its own); the gradient
  flows to the selected entries of `neg` only. An anchor with fewer valid
  negatives than `num_hard` keeps them all, the rest masked.
  """
  candidates = jax.lax.stop_gradient(jnp.where(neg_mask, neg, -jnp.inf))
  _, idx = jax.lax.top_k(candidates, num_hard)
  return (
    jnp.take_along_axis(neg, idx, axis=-1),
    jnp.take_along_axis(neg_mask, idx, axis=-1),
  )


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
  pos, neg, neg_mask = _prepare(pos, neg, neg_mask)
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
  pos, neg, neg_mask = _prepare(pos, neg, neg_mask)
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
  pos, neg, neg_mask = _prepare(pos, neg, neg_mask)
  k = resolve_num_hard(neg.shape[1], num_hard=num_hard, hard_fraction=hard_fraction)
  hard, hard_mask = _hardest(neg, neg_mask, k)
  return simple_loss(pos, hard, weight=weight, neg_mask=hard_mask)


# MACL's adaptive temperature never goes below this fraction of tau_0 (applied at run
# time). The linear schedule tau_0 * (1 + alpha * (A - A_0)) turns negative for a low
# enough batch alignment A when alpha * (1 + A_0) >= 1 (alpha = 1, A_0 = 0.3: below
# A = -0.7); the official code and lightly's MACLLoss accept such settings, so they
# are accepted here and tau is held at tau_0 / 10 there. The public defaults never
# reach it (linear alpha 0.5: tau >= tau_0 / 2; exponential alpha 2: tau >= tau_0 / 2).
# The trainer logs `temperature_floored` (1.0 on a batch where it binds).
MACL_MIN_TEMPERATURE_RATIO = 0.1


def check_macl_schedule(schedule, alpha, alignment_ref):
  """Raises ValueError for an unknown schedule or an exponential one with alpha <= 0."""
  del alignment_ref  # any A_0: the linear schedule's tau is floored, not refused
  if schedule not in MACL_SCHEDULES:
    raise ValueError(f"Unknown MACL schedule {schedule!r}; valid: {', '.join(MACL_SCHEDULES)}.")
  if isinstance(alpha, jax.core.Tracer):
    return
  if schedule == "exponential":
    numerics.check_positive("MACL alpha (exponential schedule)", alpha)


def macl_temperature(
  pos,
  *,
  temperature,
  alpha,
  alignment_ref=0.0,
  schedule="linear",
  min_ratio=MACL_MIN_TEMPERATURE_RATIO,
):
  """MACL's adaptive temperature, from the batch's alignment A = mean(pos).

  A carries no gradient. "linear": tau = tau_0 * (1 + alpha * (A - A_0)) (the ICML
  release); "exponential": tau = tau_0 * alpha ** A (the first release). Held at
  `min_ratio` * tau_0 or above (`MACL_MIN_TEMPERATURE_RATIO`; None: the raw value).

  References:
    Huang et al., "Model-Aware Contrastive Learning", ICML 2023, Sec. 4.
  """
  numerics.check_positive("temperature", temperature)
  check_macl_schedule(schedule, alpha, alignment_ref)
  a = jax.lax.stop_gradient(jnp.mean(numerics.as_compute(pos)))
  if schedule == "linear":
    tau = temperature * (1 + alpha * (a - alignment_ref))
  else:
    tau = temperature * alpha**a
  return tau if min_ratio is None else jnp.maximum(tau, min_ratio * temperature)


def _softplus_over_sigmoid(d):
  """log(1 + e^d) / sigmoid(d), finite for every finite d.

  Below d = -15 both factors underflow in float32 (their ratio tends to 1), so
  the series 1 + e^d / 2 (error below e^(2d) / 6 < 1e-13) is used there.
  """
  hi = jnp.maximum(d, -15.0)
  direct = jax.nn.softplus(hi) * (1 + jnp.exp(-hi))
  series = 1 + 0.5 * jnp.exp(jnp.minimum(d, -15.0))
  return jnp.where(d >= -15.0, direct, series)


def macl_loss(
  pos,
  neg,
  *,
  temperature,
  alpha,
  alignment_ref=0.0,
  schedule="linear",
  neg_mask=None,
) -> jax.Array:
  """The Model-Aware Contrastive Loss of each anchor.

  loss_i = -stopgrad(1 / (1 - P_i)) * log P_i, where P_i is the softmax probability
  of the positive at MACL's adaptive temperature (`macl_temperature`).

  With d_i = log((1 - P_i) / P_i) = logsumexp_k((s_ik - s_ii) / tau), the loss
  is softplus(d_i) / sigmoid(d_i) and, the weight being constant,
  d loss_i / d d_i = 1 exactly. It is computed in that form: its value stably
  (the official `softmax -> log -> 1 / (1 - P)` gives inf * 0 once P_i rounds to
  1, already at tau = 0.01 with s_ii - s_ik = 2), its gradient as that of d_i.
  Value and gradient equal the official code's wherever that is accurate (at tau_0 = 0.01 the
  official code can be finite but wrong: it forms 1 - P by cancellation). So the
  positive's gradient is -1 / tau and each negative's is r_i(s_ij) / tau, Wang &
  Liu's relative penalty. An anchor with no valid negative has loss 0.

  Args:
    pos: [N] positive similarities.
    neg: [N, K] negative similarities. The official ICML release uses cross-view
      negatives, N - 1 per anchor (`pairs.cross_view_pairs(symmetric=False)`);
      SimCLR's 2N - 2 layout (`pairs.simclr_pairs`) is the common third-party one.
    temperature: tau_0 > 0.
    alpha: the schedule's strength (public defaults: 0.5 linear, 2 exponential).
    alignment_ref: A_0 of the linear schedule (public default 0).
    schedule: "linear" or "exponential".
    neg_mask: optional [N, K] bool.

  Returns:
    [N] per-anchor losses.

  References:
    Huang et al., "Model-Aware Contrastive Learning: Towards Escaping the
    Dilemmas", ICML 2023, Eq. 8 and the official `MACLa` / `MACLb`.
  """
  pos, neg, neg_mask = _prepare(pos, neg, neg_mask)
  tau = macl_temperature(
    pos,
    temperature=temperature,
    alpha=alpha,
    alignment_ref=alignment_ref,
    schedule=schedule,
  )
  d, has_neg = _log_odds(pos, neg, neg_mask, tau)
  return jnp.where(has_neg, _macl_from_log_odds(d), 0.0)


def _macl_from_log_odds(d):
  """MACL's per-anchor loss from d_i: value softplus(d) / sigmoid(d), gradient d's."""
  value = jax.lax.stop_gradient(_softplus_over_sigmoid(d))
  return value + (d - jax.lax.stop_gradient(d))


def isogclr_temperature_gradient(neg, neg_mask, *, temperature, rho, log_s=None, gamma=1.0):
  """The gradient of iSogCLR's per-sample temperature objective, and its estimate s.

  Anchor i's temperature tau_i minimises F_i(tau) = tau (log g_i(tau) + rho), with
  g_i(tau) = mean_{k valid} exp(s_ik / tau) (the dual of a KL-constrained DRO over the
  negatives, radius rho). dF_i/dtau = log g_i + rho - mean_k w_ik s_ik / tau, with
  w_ik = exp(s_ik / tau) / g_i: that is rho - KL(softmax_k(s_ik / tau) || uniform), so
  tau_i settles where its negatives' weights are rho nats from uniform (a larger rho,
  a lower tau_i). iSogCLR replaces g_i by a moving average over the
  visits of instance i, s_i = (1 - gamma) s_i + gamma g_i (s_i = g_i on the first
  visit, and always for gamma = 1, where this is exactly dF_i/dtau).

  Args:
    neg: [N, K] negative similarities; neg_mask: [N, K] bool or None.
    temperature: [N] (or a scalar) tau_i > 0.
    rho: the DRO radius (iSogCLR's unimodal default 0.4).
    log_s: [N] log s_i before this batch, -inf where never visited; None: g_i.
    gamma: the moving average's weight on this batch.

  Returns:
    (dF/dtau [N], log s_i after this batch [N]); in log space, so finite down to
    tau = 0.01 with s_ik = 1, where exp(s / tau) overflows float32.

  References:
    Qiu et al., "Not All Semantics are Created Equal: Contrastive Self-supervised
    Learning with Automatic Temperature Individualization", ICML 2023, Eq. 5 and
    their code's SogCLR_DRO_Loss.
  """
  neg = numerics.as_compute(neg)
  mask = jnp.ones(neg.shape, bool) if neg_mask is None else jnp.asarray(neg_mask, bool)
  t = _per_anchor(temperature, neg.dtype)
  x = jnp.where(mask, neg / t, -jnp.inf)
  count = jnp.maximum(jnp.sum(mask, axis=-1), 1)
  log_g = jax.nn.logsumexp(x, axis=-1) - jnp.log(count)
  if log_s is not None:
    mixed = jnp.logaddexp(jnp.log1p(-gamma) + log_s, jnp.log(gamma) + log_g) if gamma < 1 else log_g
    log_g = jnp.where(jnp.isfinite(log_s), mixed, log_g)
  weights = jnp.exp(x - log_g[:, None])
  grad = log_g + rho - jnp.sum(jnp.where(mask, weights * x, 0.0), axis=-1) / count
  return grad, log_g


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
  pos, neg, neg_mask = _prepare(pos, neg, neg_mask)
  s_max = jnp.max(jnp.where(neg_mask, neg, -jnp.inf), axis=-1)
  at = jax.lax.stop_gradient(jnp.where(jnp.isfinite(s_max), s_max, pos))

  def total_loss(p, n):
    return jnp.sum(contrastive_loss(p, n, temperature=temperature, neg_mask=neg_mask))

  g_pos, g_neg = jax.grad(total_loss, argnums=(0, 1))(at, neg)
  denom = jnp.abs(g_pos)[:, None]
  safe = jnp.where(denom > 0, denom, 1.0)
  return jnp.where(neg_mask & (denom > 0), jnp.abs(g_neg) / safe, 0.0)


def nt_xent(z1, z2, *, temperature, block_size=None, mesh=None, layout="simclr") -> jax.Array:
  """SimCLR's NT-Xent loss: 2N anchors, one positive and 2N-2 negatives each.

  Args:
    z1: [N, D] first views (L2-normalised inside).
    z2: [N, D] second views; row i is the positive of `z1[i]`.
    temperature: tau > 0.
    block_size: None for the dense kernel (the [2N, 2N] similarity matrix); an
      integer computes the same loss over block_size x block_size tiles with a
      recomputing backward pass (`contrastive.blockwise`): memory O(N D +
      block_size^2) instead of O(N^2), one extra matmul per tile.
    mesh: with block_size, the device mesh whose "data" axis shards z1 and z2
      by rows: each device then computes its own rows' tiles against the global
      batch (`blockwise.views_logsumexp`); None lets XLA place the loop (on every
      device, the whole of it).
    layout: "simclr" (2N - 2 negatives from both views) or "cross_view" (the
      other view's N - 1, both directions; `pairs.cross_view_pairs`).

  Returns:
    Scalar: the mean over the 2N anchors. Under `jax.jit` over a device mesh, the
    negatives are the global batch's.

  References:
    Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", ICML 2020.
  """
  if block_size is None:
    pos, neg, neg_mask = _two_view_pairs(z1, z2, layout)
    return jnp.mean(contrastive_loss(pos, neg, temperature=temperature, neg_mask=neg_mask))
  numerics.check_positive("temperature", temperature)
  h1, h2, pos = _simclr_views(z1, z2)
  d = _simclr_log_odds(h1, h2, pos, temperature, block_size, mesh, layout)
  return _mean_over_anchors(jax.nn.softplus(d))


def _two_view_pairs(z1, z2, layout):
  """(pos, neg, neg_mask) of `layout` ("simclr" or "cross_view", symmetric)."""
  if layout == "cross_view":
    return pairs.cross_view_pairs(z1, z2, symmetric=True)
  if layout != "simclr":
    raise ValueError(f"Unknown layout {layout!r}; valid: simclr, cross_view.")
  return pairs.simclr_pairs(z1, z2)


def _simclr_views(z1, z2):
  """The normalised views h1, h2 [N, D] and each anchor's positive similarity [2N]."""
  pairs.check_views(jnp.asarray(z1), jnp.asarray(z2))
  h1, h2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  pos_half = jnp.sum(h1 * h2, axis=-1)
  return h1, h2, jnp.concatenate([pos_half, pos_half])


def _simclr_log_odds(h1, h2, pos, temperature, block_size, mesh, layout, num_hard=None):
  """d_i = logsumexp over the negatives of `layout` (or the num_hard hardest) of
  (s_ik - s_ii) / tau, tiled."""
  mask = "not_self" if layout == "cross_view" else "not_self_or_partner"
  return blockwise.views_logsumexp(
    h1, h2, pos, temperature, block_size=block_size, mask=mask, num_hard=num_hard, mesh=mesh,
    layout=layout,
  )  # fmt: skip


def _mean_over_anchors(loss):
  return jnp.mean(loss) if loss.shape[0] > 2 else jnp.zeros((), loss.dtype)  # no negatives


def hard_nt_xent(
  z1, z2, *, temperature, num_hard=None, hard_fraction=None, block_size=None, mesh=None,
  layout="simclr",
) -> jax.Array:  # fmt: skip
  """The hard contrastive loss on SimCLR's 2N - 2 layout (or the cross-view one).

  The mean of `hard_contrastive_loss` over the 2N anchors, each keeping the
  `num_hard` most similar of its 2N - 2 negatives. `hard_fraction` counts, as the
  dense layout's [2N, 2N] columns do, 2N candidates (the anchor's own view and its
  positive included in the count, never selected): ceil(hard_fraction x 2N).

  Args:
    z1, z2: [N, D] views (L2-normalised inside).
    temperature, num_hard, hard_fraction: as `hard_contrastive_loss`.
    block_size: None for the dense [2N, 2N] similarities; an integer for tiles of
      that side with a running top-k per anchor (`blockwise.row_hard_logsumexp`),
      memory O(N D + block_size x (block_size + num_hard)).
    mesh, layout: as `nt_xent` (cross_view: hard_fraction of the N columns).

  Returns:
    Scalar: the mean over the 2N anchors.

  References:
    Wang & Liu, CVPR 2021, Eq. 9.
  """
  if block_size is None:
    pos, neg, neg_mask = _two_view_pairs(z1, z2, layout)
    per_anchor = hard_contrastive_loss(
      pos, neg, temperature=temperature, num_hard=num_hard, hard_fraction=hard_fraction,
      neg_mask=neg_mask,
    )  # fmt: skip
    return jnp.mean(per_anchor)
  numerics.check_positive("temperature", temperature)
  h1, h2, pos = _simclr_views(z1, z2)
  columns = h1.shape[0] if layout == "cross_view" else pos.shape[0]  # the dense layout's
  k = resolve_num_hard(columns, num_hard=num_hard, hard_fraction=hard_fraction)
  d = _simclr_log_odds(h1, h2, pos, temperature, block_size, mesh, layout, num_hard=k)
  return _mean_over_anchors(jax.nn.softplus(d))


def macl_nt_xent(
  z1,
  z2,
  *,
  temperature,
  alpha,
  alignment_ref=0.0,
  schedule="linear",
  block_size=None,
  mesh=None,
  layout="simclr",
) -> jax.Array:
  """MACL on SimCLR's 2N - 2 layout (or the cross-view one), from the views: the mean of
  `macl_loss`.

  Args:
    z1, z2: [N, D] views (L2-normalised inside).
    temperature, alpha, alignment_ref, schedule: as `macl_loss`.
    block_size: None for the dense [2N, 2N] similarities; an integer for tiles of
      that side (`contrastive.blockwise`), memory O(N D + block_size^2).
    mesh, layout: as `nt_xent`.

  Returns:
    Scalar: the mean over the 2N anchors.
  """
  if block_size is None:
    pos, neg, neg_mask = _two_view_pairs(z1, z2, layout)
    per_anchor = macl_loss(
      pos, neg, temperature=temperature, alpha=alpha, alignment_ref=alignment_ref,
      schedule=schedule, neg_mask=neg_mask,
    )  # fmt: skip
    return jnp.mean(per_anchor)
  h1, h2, pos = _simclr_views(z1, z2)
  tau = macl_temperature(
    pos, temperature=temperature, alpha=alpha, alignment_ref=alignment_ref, schedule=schedule
  )
  d = _simclr_log_odds(h1, h2, pos, tau, block_size, mesh, layout)
  return _mean_over_anchors(_macl_from_log_odds(d))


# Chen et al.'s distribution-matching terms: name -> (prior family, whether the
# prior samples are always L2-normalised).
GENERALIZED_DISTRIBUTIONS = {
  "logsumexp": (None, False),
  "swd_gaussian": ("normal", False),
  "swd_hypersphere": ("normal", True),
  "swd_hypercube": ("uniform", False),
}


def _logsumexp_distribution(h1, h2, temperature, block_size=None, mesh=None):
  # Official quirks: j runs over all 2n rows, i itself and its positive included
  # (no masking), and log(d) is subtracted (changes values, not gradients).
  h = jnp.concatenate([h1, h2], axis=0)
  if block_size is None:
    lse = jax.nn.logsumexp(h @ h.T / temperature, axis=-1)
  else:
    shift = jnp.zeros(h.shape[:1], h.dtype)
    lse = blockwise.views_logsumexp(
      h1, h2, shift, temperature, block_size=block_size, mask="all", mesh=mesh
    )
  return jnp.mean(lse - jnp.log(h.shape[-1]))


def swd_draws(key, shape, *, distribution, normalize):
  """The random projection and prior samples of the sliced Wasserstein term.

  Args:
    key: a PRNG key; drawn fresh for every call (a per-step key in training).
    shape: (2n, d), the shape of the stacked views.
    distribution: one of the "swd_*" names of `GENERALIZED_DISTRIBUTIONS`.
    normalize: the loss's `normalize` (the notebooks' `hidden_norm`). Quirk of the
      official code: when True, the prior samples are L2-normalised too, whatever
      the prior, so "swd_gaussian" with normalize=True equals "swd_hypersphere".

  Returns:
    projection: [d, d] random orthogonal matrix (as Keras' Orthogonal initializer).
    prior: [2n, d] prior samples: N(0, 1), or U(-1, 1) for the hypercube.
  """
  family, always_normalize = GENERALIZED_DISTRIBUTIONS[distribution]
  k_proj, k_prior = jax.random.split(key)
  d = shape[-1]
  projection = jax.nn.initializers.orthogonal()(k_proj, (d, d), jnp.float32)
  if family == "normal":
    prior = jax.random.normal(k_prior, shape, jnp.float32)
  else:
    prior = jax.random.uniform(k_prior, shape, jnp.float32, minval=-1.0, maxval=1.0)
  if normalize or always_normalize:
    prior = numerics.l2_normalize(prior)
  return projection, prior


def sliced_wasserstein(h, prior, projection) -> jax.Array:
  """Mean squared gap between sorted projections of `h` and of `prior`.

  Args:
    h: [B, d] samples; prior: [B, d] prior samples; projection: [d, d].

  Returns:
    Scalar: mean((sort(prior @ W) - sort(h @ W))^2), each projected dimension
    sorted across the batch.

  References:
    Chen, Luo & Li, NeurIPS 2021, Sec. 3 (`get_swd_loss` in the official notebook).
  """
  # In h's precision (float64 stays float64: the draws are float32 samples).
  h = numerics.as_compute(h)
  projection = jnp.asarray(projection, h.dtype)
  hw = jnp.sort(h @ projection, axis=0)
  pw = jnp.sort(jnp.asarray(prior, h.dtype) @ projection, axis=0)
  return jnp.mean(jnp.square(pw - hw))


def generalized_contrastive_loss(
  z1,
  z2,
  *,
  distribution,
  weight,
  temperature=1.0,
  normalize=True,
  key=None,
  scale=1.0,
  block_size=None,
  mesh=None,
) -> jax.Array:
  """Chen et al.'s generalized contrastive loss: alignment + weight * distribution.

  loss = scale * (L_align + weight * L_distribution), with the official notebooks'
  semantics, quirks included:
  * L_align = mean over all n*d elements of (h1 - h2)^2, divided by 2 (the mean
    over d makes `weight`'s meaning depend on the dimension);
  * "logsumexp" (decoupled NT-Xent): mean_i logsumexp_j(H_i . H_j / tau) - log(d)
    over H = concat(h1, h2), j over all 2n rows with no masking;
  * "swd_*": sliced Wasserstein distance from H to prior samples, projected by a
    fresh random orthogonal matrix (`swd_draws`, `sliced_wasserstein`).

  Args:
    z1: [n, d] first views.
    z2: [n, d] second views.
    distribution: "logsumexp", "swd_gaussian", "swd_hypersphere" or
      "swd_hypercube".
    weight: lambda, the distribution term's weight.
    temperature: tau of the logsumexp term (ignored by SWD).
    normalize: L2-normalise both views first (the notebooks' `hidden_norm`); the
      paper pairs the Gaussian and hypercube priors with False, the hypersphere
      with True.
    key: PRNG key, required by the SWD terms.
    scale: the notebooks' `loss_scaling`.
    block_size: for "logsumexp", None (dense) or the tile side of a blockwise
      computation (`contrastive.blockwise`; memory O(n d + block_size^2)). The SWD
      terms build no n x n matrix and ignore it.
    mesh: with block_size, as `nt_xent`.

  Returns:
    Scalar loss.

  References:
    Chen, Luo & Li, "Intriguing Properties of Contrastive Losses", NeurIPS 2021,
    Eqs. 2-4; SimCLR repository, colabs/intriguing_properties.
  """
  if distribution not in GENERALIZED_DISTRIBUTIONS:
    raise ValueError(
      f"Unknown distribution {distribution!r}; valid: {', '.join(GENERALIZED_DISTRIBUTIONS)}."
    )
  pairs.check_views(jnp.asarray(z1), jnp.asarray(z2))
  if normalize:
    h1, h2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  else:
    h1, h2 = numerics.as_compute(z1), numerics.as_compute(z2)
  align = jnp.mean(jnp.square(h1 - h2)) / 2
  if distribution == "logsumexp":
    numerics.check_positive("temperature", temperature)
    dist = _logsumexp_distribution(h1, h2, temperature, block_size, mesh)
  else:
    h = jnp.concatenate([h1, h2], axis=0)
    if key is None:
      raise ValueError(f"distribution {distribution!r} needs a PRNG key: pass key=.")
    projection, prior = swd_draws(key, h.shape, distribution=distribution, normalize=normalize)
    dist = sliced_wasserstein(h, prior, projection)
  return scale * (align + weight * dist)
