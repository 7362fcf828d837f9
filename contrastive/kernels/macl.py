"""Model-Aware Contrastive Learning (Huang et al., ICML 2023): a temperature that adapts
to the batch's alignment, and the loss reweighted by 1 / (1 - P)."""

import jax
import jax.numpy as jnp

from contrastive import numerics
from contrastive.kernels import infonce
from contrastive.kernels import views

MACL_SCHEDULES = ("linear", "exponential")


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
  pos, neg, neg_mask = infonce.prepare(pos, neg, neg_mask)
  tau = macl_temperature(
    pos,
    temperature=temperature,
    alpha=alpha,
    alignment_ref=alignment_ref,
    schedule=schedule,
  )
  d, has_neg = infonce.log_odds(pos, neg, neg_mask, tau)
  return jnp.where(has_neg, _macl_from_log_odds(d), 0.0)


def _macl_from_log_odds(d):
  """MACL's per-anchor loss from d_i: value softplus(d) / sigmoid(d), gradient d's."""
  value = jax.lax.stop_gradient(_softplus_over_sigmoid(d))
  return value + (d - jax.lax.stop_gradient(d))


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
    pos, neg, neg_mask = views.two_view_pairs(z1, z2, layout)
    per_anchor = macl_loss(
      pos, neg, temperature=temperature, alpha=alpha, alignment_ref=alignment_ref,
      schedule=schedule, neg_mask=neg_mask,
    )  # fmt: skip
    return jnp.mean(per_anchor)
  h1, h2, pos = views.simclr_views(z1, z2)
  tau = macl_temperature(
    pos, temperature=temperature, alpha=alpha, alignment_ref=alignment_ref, schedule=schedule
  )
  d = views.simclr_log_odds(h1, h2, pos, tau, block_size, mesh, layout)
  return views.mean_over_anchors(_macl_from_log_odds(d))
