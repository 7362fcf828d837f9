"""The training objective: a loss kernel on a layout of negatives, and the memory bank.

`objective(cfg, z1, z2, ...)` takes the projections of a batch's two views and the
loss section of the config: it lays out (pos, neg, neg_mask) as `cfg.layout` says
(`LAYOUTS`), applies the loss `cfg.name` names (`LOSSES`), and returns the loss with
similarity statistics for logging; `loss` and `diagnostics` are its two halves
(the trainer computes the second on logged steps only). The temperature may be
traced, so a temperature population vmaps the whole objective over tau.
"""

import jax
import jax.numpy as jnp

from contrastive import analysis
from contrastive import losses
from contrastive import metrics
from contrastive import numerics
from contrastive import pairs

LAYOUTS = ("simclr", "cross_view", "memory_bank")


def layout(name, z1, z2, bank, indices):
  """(pos, neg, neg_mask) for the named layout; the memory bank takes 2B anchors."""
  if name == "simclr":
    return pairs.simclr_pairs(z1, z2)
  if name == "cross_view":
    return pairs.cross_view_pairs(z1, z2, symmetric=True)
  # Memory bank: both views are anchors, each the other's positive; negatives are
  # the bank entries of every other training instance.
  both_idx = jnp.concatenate([indices, indices])
  return pairs.memory_bank_pairs(
    jnp.concatenate([z1, z2]), jnp.concatenate([z2, z1]), bank, both_idx
  )


TEMPERATURE_SCHEDULES = ("constant", "cosine", "linear")
LEARNED_TEMPERATURES = ("none", "global", "per_sample")
# The losses and layouts a per-sample temperature serves: one tau_i per anchor.
PER_SAMPLE_LOSSES = ("contrastive", "hard_contrastive")
PER_SAMPLE_LAYOUTS = ("simclr", "memory_bank")
# iSogCLR's clip on the per-sample temperature gradient (their code's grad_clip).
PER_SAMPLE_GRADIENT_CLIP = 3.0


def clip_log_temperature(cfg, log_tau):
  """A learned log-temperature held in [log temperature_min, log temperature_max]."""
  return jnp.clip(log_tau, jnp.log(cfg.temperature_min), jnp.log(cfg.temperature_max))


def init_sample_temperatures(cfg, num_train: int) -> dict:
  """A per-sample temperature's state (loss.temperature_learned="per_sample"), a row
  per training instance like the memory bank: tau_i (from loss.temperature), the
  momentum of its updates, and log s_i, the moving estimate of g_i (-inf: unvisited)."""
  return {
    "tau": jnp.full((num_train,), cfg.temperature, jnp.float32),
    "momentum": jnp.zeros((num_train,), jnp.float32),
    "log_s": jnp.full((num_train,), -jnp.inf, jnp.float32),
  }


def anchor_temperatures(sample: dict, indices) -> jax.Array:
  """The [2B] temperatures of a batch's anchors (both views of instance i: tau_i), in
  the order `layout` gives its anchors (first views, then second views)."""
  tau = sample["tau"][indices]
  return jnp.concatenate([tau, tau])


def update_sample_temperatures(cfg, sample: dict, z1, z2, *, indices, bank) -> dict:
  """iSogCLR's step on the batch's per-sample temperatures (Qiu et al., ICML 2023).

  For each anchor, the gradient of F(tau) = tau (log s + rho) (`losses.
  isogclr_temperature_gradient`, s the moving estimate with weight
  cfg.temperature_gamma); an instance's two anchors are averaged (and their s),
  clipped to +-PER_SAMPLE_GRADIENT_CLIP, folded into a momentum u = (1 - beta) u +
  beta grad (beta = cfg.temperature_momentum), and tau_i <- clip(tau_i - eta u,
  temperature_min, temperature_max), eta = cfg.temperature_sample_learning_rate: their
  code's `SogCLR_DRO_Loss` update. No gradient reaches the network from here.
  """
  z1, z2 = jax.lax.stop_gradient(z1), jax.lax.stop_gradient(z2)
  _, neg, mask = layout(cfg.layout, z1, z2, bank, indices)
  log_s = sample["log_s"][indices]
  grad, log_s_new = losses.isogclr_temperature_gradient(
    neg,
    mask,
    temperature=anchor_temperatures(sample, indices),
    rho=cfg.temperature_rho,
    log_s=jnp.concatenate([log_s, log_s]),
    gamma=cfg.temperature_gamma,
  )
  b = indices.shape[0]
  limit = PER_SAMPLE_GRADIENT_CLIP
  grad = jnp.clip((grad[:b] + grad[b:]) / 2, -limit, limit)
  beta = cfg.temperature_momentum
  momentum = (1 - beta) * sample["momentum"][indices] + beta * grad
  tau = sample["tau"][indices] - cfg.temperature_sample_learning_rate * momentum
  tau = jnp.clip(tau, cfg.temperature_min, cfg.temperature_max)
  log_s = jnp.logaddexp(log_s_new[:b], log_s_new[b:]) - jnp.log(2.0)  # (s1 + s2) / 2
  return {
    "tau": sample["tau"].at[indices].set(tau),
    "momentum": sample["momentum"].at[indices].set(momentum),
    "log_s": sample["log_s"].at[indices].set(log_s),
  }


def temperature_schedule(cfg, steps_per_epoch: int):
  """The loss config's temperature as a function of the (traced) step, or None for a
  constant `cfg.temperature` (`cfg.temperature_schedule`).

  "cosine" is Kukleva et al.'s schedule (ICLR 2023; their code's
  `min_tau + 0.5 (max_tau - min_tau) (1 + cos(pi epoch / t_max))`), with the epoch
  counted continuously from 0 here (step / steps_per_epoch; theirs steps once per
  epoch, counted from 1): tau_max at step 0, tau_min after the half period, tau_max
  again after a whole one. "linear" falls from tau_max to `cfg.temperature` over
  `cfg.temperature_warm_epochs`, then stays. Both are functions of the step alone,
  so a resumed run continues the schedule exactly.
  """
  name = cfg.temperature_schedule
  if name == "constant":
    return None
  low, high = cfg.temperature_min, cfg.temperature_max

  def epoch(step):
    return jnp.asarray(step, jnp.float32) / steps_per_epoch

  if name == "cosine":
    half = cfg.temperature_half_period_epochs
    return lambda step: low + 0.5 * (high - low) * (1 + jnp.cos(jnp.pi * epoch(step) / half))
  if name == "linear":
    warm, final = cfg.temperature_warm_epochs, cfg.temperature
    return lambda step: high + (final - high) * jnp.clip(epoch(step) / warm, 0.0, 1.0)
  raise ValueError(f"Unknown temperature schedule {name!r}; valid: {TEMPERATURE_SCHEDULES}.")


def uses_bank(cfg) -> bool:
  """Whether the loss config `cfg` keeps an NPID memory bank in the train state."""
  return cfg.layout == "memory_bank" and cfg.name != "generalized"


def _hard(cfg) -> dict:
  """The hard-negative count as the kernels take it: num_hard or hard_fraction."""
  if cfg.hard_fraction is None:
    return {"num_hard": cfg.num_hard}
  return {"hard_fraction": cfg.hard_fraction}


# Similarity-level losses, each (pos, neg, neg_mask, loss config, temperature) ->
# per-anchor loss [N]; the temperature is an argument so a population can vary it.


def contrastive(pos, neg, neg_mask, cfg, temperature):
  del cfg
  return losses.contrastive_loss(pos, neg, temperature=temperature, neg_mask=neg_mask)


def hard_contrastive(pos, neg, neg_mask, cfg, temperature):
  return losses.hard_contrastive_loss(
    pos, neg, temperature=temperature, neg_mask=neg_mask, **_hard(cfg)
  )


def simple(pos, neg, neg_mask, cfg, temperature):
  del temperature
  return losses.simple_loss(pos, neg, weight=cfg.simple_weight, neg_mask=neg_mask)


def hard_simple(pos, neg, neg_mask, cfg, temperature):
  del temperature
  return losses.hard_simple_loss(
    pos, neg, weight=cfg.simple_weight, neg_mask=neg_mask, **_hard(cfg)
  )


def macl(pos, neg, neg_mask, cfg, temperature):
  return losses.macl_loss(
    pos,
    neg,
    temperature=temperature,
    alpha=cfg.macl_alpha,
    alignment_ref=cfg.macl_alignment_ref,
    schedule=cfg.macl_schedule,
    neg_mask=neg_mask,
  )


# loss.name -> its per-anchor loss; "generalized" works on the embeddings themselves
# (Chen et al.'s alignment + lambda x distribution), not on a layout's similarities.
SIMILARITY_LOSSES = {
  "contrastive": contrastive,
  "hard_contrastive": hard_contrastive,
  "simple": simple,
  "hard_simple": hard_simple,
  "macl": macl,
}
LOSSES = (*SIMILARITY_LOSSES, "generalized")


def objective(cfg, z1, z2, *, indices, bank, key, temperature=None, mesh=None):
  """The configured loss on projections z1, z2 [B, D], and similarity statistics.

  Args:
    cfg: the config's loss section.
    z1, z2: projections of the two views [B, D].
    indices: the batch's dataset indices [B] (the memory bank's rows).
    bank: the memory bank [num_train, D], or None.
    key: PRNG key of the step's random draws (the SWD projections).
    temperature: a scalar, possibly traced, replacing `cfg.temperature`.
    mesh: the mesh whose "data" axis shards the batch (for the tiled kernels).

  Returns:
    (scalar loss, dict of scalar diagnostics): `loss` and `diagnostics`.
  """
  value = loss(cfg, z1, z2, indices=indices, bank=bank, key=key, temperature=temperature, mesh=mesh)
  return value, diagnostics(cfg, z1, z2, indices=indices, bank=bank, temperature=temperature)


def loss(cfg, z1, z2, *, indices, bank, key, temperature=None, mesh=None):
  """The scalar loss `cfg` names on projections z1, z2 [B, D] (arguments as `objective`).

  `mesh`: the device mesh whose "data" axis shards the batch; the tiled kernels
  (`cfg.block_size`) then give each device its own rows (`losses.nt_xent`).
  """
  z1 = numerics.as_compute(z1)
  z2 = numerics.as_compute(z2)
  tau = cfg.temperature if temperature is None else temperature
  if cfg.name == "generalized":
    return losses.generalized_contrastive_loss(
      z1,
      z2,
      distribution=cfg.distribution,
      weight=cfg.weight,
      temperature=tau,
      normalize=cfg.normalize,
      key=key,
      block_size=cfg.get("block_size"),
      mesh=mesh,
    )
  if cfg.get("block_size") is not None:
    return _tiled_loss(cfg, z1, z2, tau, mesh)
  pos, neg, mask = layout(cfg.layout, z1, z2, bank, indices)
  return jnp.mean(SIMILARITY_LOSSES[cfg.name](pos, neg, mask, cfg, tau))


def diagnostics(cfg, z1, z2, *, indices, bank, temperature=None):
  """Similarity statistics of a batch for logging (no gradient flows through them).

  The positive and mean negative similarity, the mean hardest negative, the mean
  entropy of the relative penalty (Wang & Liu's hardness measure, through one
  extra gradient of the loss), the temperature the loss used, and the batch's
  alignment and uniformity. The trainer computes them on logged steps only.
  With `cfg.block_size`, those that need the whole similarity matrix are left out.
  """
  z1 = numerics.as_compute(z1)
  z2 = numerics.as_compute(z2)
  tau = cfg.temperature if temperature is None else temperature
  if cfg.get("block_size") is not None:
    return _tiled_stats(cfg, z1, z2, tau)
  name = "simclr" if cfg.name == "generalized" else cfg.layout
  pos, neg, mask = layout(name, z1, z2, bank, indices)
  extra = _floor_binds(cfg, pos, tau)
  tau = _logged_temperature(cfg, pos, tau)
  return jax.lax.stop_gradient(
    {
      "pos_sim": jnp.mean(pos),
      "neg_sim": jnp.sum(jnp.where(mask, neg, 0.0)) / jnp.sum(mask),
      "neg_sim_max": jnp.mean(jnp.max(jnp.where(mask, neg, -jnp.inf), axis=-1)),
      "penalty_entropy": jnp.mean(
        analysis.penalty_entropy(pos, neg, temperature=tau, neg_mask=mask)
      ),
      "temperature": jnp.mean(jnp.asarray(tau, jnp.float32)),  # per-sample: the batch's mean
      "batch_alignment": metrics.alignment(z1, z2),
      "batch_uniformity": metrics.uniformity(z1),
      **extra,
    }
  )


def _logged_temperature(cfg, pos, tau):
  """The temperature the loss used: MACL's adaptive one, else `tau` itself."""
  if cfg.name != "macl":
    return tau
  return _macl_temperature(cfg, pos, tau)


def _floor_binds(cfg, pos, tau) -> dict:
  """MACL: {"temperature_floored": 1.0 if its temperature floor binds on this batch}."""
  if cfg.name != "macl":
    return {}
  raw = _macl_temperature(cfg, pos, tau, min_ratio=None)
  floored = raw < losses.MACL_MIN_TEMPERATURE_RATIO * tau
  return {"temperature_floored": jnp.asarray(floored, jnp.float32)}


def _macl_temperature(cfg, pos, tau, **kwargs):
  return losses.macl_temperature(
    pos,
    temperature=tau,
    alpha=cfg.macl_alpha,
    alignment_ref=cfg.macl_alignment_ref,
    schedule=cfg.macl_schedule,
    **kwargs,
  )


# The losses `loss.block_size` computes tile by tile (`contrastive.blockwise`), by
# name, with the layouts they allow: NT-Xent, the hard contrastive loss (a running
# top-k) and MACL on the two-view layouts, and the generalized loss (its logsumexp
# term; SWD builds no n x n matrix). The memory bank has no tiled form.
BLOCKWISE = {
  "contrastive": ("simclr", "cross_view"),
  "hard_contrastive": ("simclr", "cross_view"),
  "macl": ("simclr", "cross_view"),
  "generalized": ("simclr", "cross_view", "memory_bank"),
}


def _tiled_loss(cfg, z1, z2, tau, mesh):
  """NT-Xent, the hard loss or MACL on a two-view layout over tiles of `cfg.block_size`."""
  tiles = {"block_size": cfg.block_size, "mesh": mesh, "layout": cfg.layout}
  if cfg.name == "hard_contrastive":
    return losses.hard_nt_xent(z1, z2, temperature=tau, **tiles, **_hard(cfg))
  if cfg.name == "macl":
    return losses.macl_nt_xent(
      z1, z2, temperature=tau, alpha=cfg.macl_alpha, alignment_ref=cfg.macl_alignment_ref,
      schedule=cfg.macl_schedule, **tiles,
    )  # fmt: skip
  return losses.nt_xent(z1, z2, temperature=tau, **tiles)


def _tiled_stats(cfg, z1, z2, tau):
  """`objective`'s diagnostics without any [2B, 2B] array.

  The ones that need the whole similarity matrix (the hardest negative, the
  penalty entropy) are left out; the mean negative similarity comes from closed
  forms: SimCLR's sum_{i != j} s_ij = |sum_i h_i|^2 - sum_i |h_i|^2 over H =
  concat(h1, h2), less the positives; the cross-view layout's (sum_i h1_i) .
  (sum_j h2_j) less the positives.
  """
  h1, h2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  pos_half = jnp.sum(h1 * h2, axis=-1)
  extra = _floor_binds(cfg, pos_half, tau)
  n = h1.shape[0]
  if cfg.layout == "cross_view" and cfg.name != "generalized":
    neg_sim = (jnp.dot(jnp.sum(h1, axis=0), jnp.sum(h2, axis=0)) - jnp.sum(pos_half)) / max(
      n * (n - 1), 1
    )
  else:
    h = jnp.concatenate([h1, h2])
    total = jnp.sum(jnp.square(jnp.sum(h, axis=0))) - jnp.sum(jnp.square(h))
    neg_sim = (total - 2 * jnp.sum(pos_half)) / max(2 * n * (2 * n - 2), 1)
  return jax.lax.stop_gradient(
    {
      "pos_sim": jnp.mean(pos_half),
      "neg_sim": neg_sim,
      "temperature": jnp.asarray(_logged_temperature(cfg, pos_half, tau), jnp.float32),
      "batch_alignment": metrics.alignment(z1, z2),
      "batch_uniformity": metrics.uniformity(z1),
      **extra,
    }
  )


def update_bank(bank, indices, z1, z2, momentum):
  """NPID's memory-bank update: v <- normalise(m v + (1 - m) f), f the views' mean."""
  f = (numerics.l2_normalize(z1) + numerics.l2_normalize(z2)) / 2
  new = momentum * bank[indices] + (1 - momentum) * jax.lax.stop_gradient(f)
  return bank.at[indices].set(numerics.l2_normalize(new))
