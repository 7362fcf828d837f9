"""The training objective: the loss registry, the layouts of negatives, the memory bank.

A loss is one `LossSpec` in `SPECS`: its kernels and everything the trainer and the
config checks need to know of it (the layouts it takes, whether it has a tiled form,
whether a per-sample temperature serves it, the temperature it really applies, its
own config checks). Nothing else in the package names a loss.

`objective(cfg, z1, z2, ...)` takes the projections of a batch's two views and the
loss section of the config: it lays out (pos, neg, neg_mask) as `cfg.layout` says
(`LAYOUTS`), applies the spec's kernel, and returns the loss with similarity
statistics for logging; `loss` and `diagnostics` are its two halves (the trainer
computes the second on logged steps only). The temperature may be traced, so a
temperature population vmaps the whole objective over tau.

Adding a loss: its kernel in `contrastive.kernels` (named in `contrastive.losses`),
one `LossSpec` below, its keys in `config.base()`, its tests.
"""

from collections.abc import Callable
import dataclasses

import jax
import jax.numpy as jnp

from contrastive import analysis
from contrastive import config
from contrastive import logs
from contrastive import losses
from contrastive import metrics
from contrastive import numerics
from contrastive import pairs

LAYOUTS = ("simclr", "cross_view", "memory_bank")
# The two-view layouts, which every loss with a tiled form computes over tiles
# (loss.block_size); the memory bank's tiled form is a spec's `bank`.
TILED_LAYOUTS = ("simclr", "cross_view")


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


@dataclasses.dataclass(frozen=True)
class LossSpec:
  """Everything the trainer and the config checks know of one loss.

  Attributes:
    name: loss.name.
    description: what it is, in a few words (listed by `run.py --help`).
    per_anchor: (pos, neg, neg_mask, cfg, tau) -> [N] per-anchor losses on a
      layout's similarities; None for a loss of the views themselves.
    views: (cfg, z1, z2, tau, *, key, block_size, mesh, layout) -> the scalar loss
      of two views [B, D]: the tiled form (block_size an integer), and for a loss
      without `per_anchor` the dense one too (block_size None); None: no such form.
    bank: (cfg, z1, z2, tau, *, bank, indices, block_size, mesh) -> the scalar loss
      against a memory bank over tiles (`kernels.bank`); None: no tiled bank form.
    layouts: the loss.layout values it takes.
    tiled_layouts: those it computes over tiles (loss.block_size).
    per_sample_temperature: whether a per-sample temperature (one tau_i per
      anchor) serves it.
    applied_temperature: (cfg, pos, tau) -> the temperature the kernel applies, for
      a loss that adapts tau to the batch (MACL); None: tau itself.
    extra_diagnostics: (cfg, pos, tau) -> {name: scalar} logged beside the standard
      statistics; None: nothing.
    stats_layout: the layout whose similarities the diagnostics describe; None:
      loss.layout.
    check: (loss cfg) -> None, raising `config.ConfigError` on its own impossible
      values; None: nothing to check.
    hard: whether it keeps only the hardest negatives (loss.num_hard or
      loss.hard_fraction).
  """

  name: str
  description: str
  per_anchor: Callable | None = None
  views: Callable | None = None
  bank: Callable | None = None
  layouts: tuple[str, ...] = LAYOUTS
  tiled_layouts: tuple[str, ...] = ()
  per_sample_temperature: bool = False
  applied_temperature: Callable | None = None
  extra_diagnostics: Callable | None = None
  stats_layout: str | None = None
  check: Callable | None = None
  hard: bool = False


def _hard(cfg) -> dict:
  """The hard-negative count as the kernels take it: num_hard or hard_fraction."""
  if cfg.hard_fraction is None:
    return {"num_hard": cfg.num_hard}
  return {"hard_fraction": cfg.hard_fraction}


def _tiles(block_size, mesh, layout) -> dict:
  return {"block_size": block_size, "mesh": mesh, "layout": layout}


def _macl_kwargs(cfg) -> dict:
  return {"alpha": cfg.macl_alpha, "alignment_ref": cfg.macl_alignment_ref,
          "schedule": cfg.macl_schedule}  # fmt: skip


def _macl_applied(cfg, pos, tau):
  return losses.macl_temperature(pos, temperature=tau, **_macl_kwargs(cfg))


def _macl_floor(cfg, pos, tau) -> dict:
  """{"temperature_floored": 1.0 if MACL's temperature floor binds on this batch}."""
  raw = losses.macl_temperature(pos, temperature=tau, min_ratio=None, **_macl_kwargs(cfg))
  floored = raw < losses.MACL_MIN_TEMPERATURE_RATIO * tau
  return {"temperature_floored": jnp.asarray(floored, jnp.float32)}


def _check_macl(cfg) -> None:
  try:
    losses.check_macl_schedule(cfg.macl_schedule, cfg.macl_alpha, cfg.macl_alignment_ref)
  except ValueError as e:
    raise config.ConfigError(str(e)) from None


def _check_generalized(cfg) -> None:
  config.check_choice("distribution (loss.distribution)", cfg.distribution,
                      tuple(losses.GENERALIZED_DISTRIBUTIONS))  # fmt: skip


def _generalized(cfg, z1, z2, tau, *, key, block_size, mesh, layout):
  del layout  # Chen et al.'s terms are of the stacked views, in no layout
  return losses.generalized_contrastive_loss(
    z1, z2, distribution=cfg.distribution, weight=cfg.weight, temperature=tau,
    normalize=cfg.normalize, key=key, block_size=block_size, mesh=mesh,
  )  # fmt: skip


SPECS = {
  s.name: s
  for s in (
    LossSpec(
      "contrastive",
      "InfoNCE / NT-Xent (Wang & Liu Eq. 1)",
      per_anchor=lambda pos, neg, mask, cfg, tau: losses.contrastive_loss(
        pos, neg, temperature=tau, neg_mask=mask
      ),
      views=lambda cfg, z1, z2, tau, *, key, block_size, mesh, layout: losses.nt_xent(
        z1, z2, temperature=tau, **_tiles(block_size, mesh, layout)
      ),
      bank=lambda cfg, z1, z2, tau, *, bank, indices, block_size, mesh: losses.bank_nt_xent(
        z1, z2, bank, indices, temperature=tau, block_size=block_size, mesh=mesh
      ),
      tiled_layouts=LAYOUTS,
      per_sample_temperature=True,
    ),
    LossSpec(
      "hard_contrastive",
      "only the hardest negatives (Wang & Liu Eq. 9; loss.num_hard or hard_fraction)",
      per_anchor=lambda pos, neg, mask, cfg, tau: losses.hard_contrastive_loss(
        pos, neg, temperature=tau, neg_mask=mask, **_hard(cfg)
      ),
      views=lambda cfg, z1, z2, tau, *, key, block_size, mesh, layout: losses.hard_nt_xent(
        z1, z2, temperature=tau, **_tiles(block_size, mesh, layout), **_hard(cfg)
      ),
      bank=lambda cfg, z1, z2, tau, *, bank, indices, block_size, mesh: losses.hard_bank_nt_xent(
        z1, z2, bank, indices, temperature=tau, block_size=block_size, mesh=mesh, **_hard(cfg)
      ),
      tiled_layouts=LAYOUTS,
      per_sample_temperature=True,
      hard=True,
    ),
    LossSpec(
      "simple",
      "no hardness awareness (Wang & Liu Eq. 3; loss.simple_weight)",
      per_anchor=lambda pos, neg, mask, cfg, tau: losses.simple_loss(
        pos, neg, weight=cfg.simple_weight, neg_mask=mask
      ),
    ),
    LossSpec(
      "hard_simple",
      "the simple loss over the hardest negatives (Wang & Liu Table 1)",
      per_anchor=lambda pos, neg, mask, cfg, tau: losses.hard_simple_loss(
        pos, neg, weight=cfg.simple_weight, neg_mask=mask, **_hard(cfg)
      ),
      hard=True,
    ),
    LossSpec(
      "macl",
      "Model-Aware Contrastive Learning (Huang et al.; loss.macl_*)",
      per_anchor=lambda pos, neg, mask, cfg, tau: losses.macl_loss(
        pos, neg, temperature=tau, neg_mask=mask, **_macl_kwargs(cfg)
      ),
      views=lambda cfg, z1, z2, tau, *, key, block_size, mesh, layout: losses.macl_nt_xent(
        z1, z2, temperature=tau, **_macl_kwargs(cfg), **_tiles(block_size, mesh, layout)
      ),
      tiled_layouts=TILED_LAYOUTS,
      applied_temperature=_macl_applied,
      extra_diagnostics=_macl_floor,
      check=_check_macl,
    ),
    LossSpec(
      "dcl",
      "decoupled contrastive loss: the positive out of the denominator (Yeh et al.)",
      per_anchor=lambda pos, neg, mask, cfg, tau: losses.dcl_loss(
        pos, neg, temperature=tau, neg_mask=mask
      ),
      views=lambda cfg, z1, z2, tau, *, key, block_size, mesh, layout: losses.dcl(
        z1, z2, temperature=tau, **_tiles(block_size, mesh, layout)
      ),
      tiled_layouts=TILED_LAYOUTS,
    ),
    LossSpec(
      "generalized",
      "alignment + lambda x distribution matching (Chen et al.; loss.distribution)",
      views=_generalized,
      layouts=TILED_LAYOUTS,
      tiled_layouts=TILED_LAYOUTS,
      stats_layout="simclr",
      check=_check_generalized,
    ),
  )
}
LOSSES = tuple(SPECS)


def spec(cfg) -> LossSpec:
  """The `LossSpec` loss config `cfg` names; ValueError listing the valid names."""
  if cfg.name not in SPECS:
    raise ValueError(f"Unknown loss {cfg.name!r}; valid: {', '.join(LOSSES)}.")
  return SPECS[cfg.name]


def check(cfg) -> None:
  """Raises `config.ConfigError` where the loss config cannot work: the loss's layout,
  its tiled form, its own keys."""
  config.check_choice("loss (loss.name)", cfg.name, LOSSES)
  config.check_choice("negative layout (loss.layout)", cfg.layout, LAYOUTS)
  s = SPECS[cfg.name]
  if cfg.layout not in s.layouts:
    raise config.ConfigError(
      f"loss.name={cfg.name!r} does not take loss.layout={cfg.layout!r}; set loss.layout to "
      f"one of {', '.join(repr(x) for x in s.layouts)}."
    )
  if cfg.block_size is not None:
    if not cfg.block_size >= 1:
      raise config.ConfigError(
        f"loss.block_size must be a positive integer (or None for the dense kernel), got "
        f"{cfg.block_size}."
      )
    if cfg.layout not in s.tiled_layouts:
      tiled = ", ".join(n for n, x in SPECS.items() if x.tiled_layouts)
      banked = ", ".join(n for n, x in SPECS.items() if "memory_bank" in x.tiled_layouts)
      raise config.ConfigError(
        f"loss.block_size tiles {tiled} (loss.layout 'simclr' or 'cross_view'; "
        f"'memory_bank' too for {banked}) only, not loss.name={cfg.name!r} with "
        f"loss.layout={cfg.layout!r}; unset loss.block_size."
      )
  if s.check is not None:
    s.check(cfg)


def num_negatives(layout_name: str, batch_size: int, num_train: int) -> int:
  """Negatives per anchor in a layout: SimCLR's 2N - 2, the cross-view N - 1, the
  memory bank's every other training instance."""
  return {"simclr": 2 * batch_size - 2, "cross_view": batch_size - 1,
          "memory_bank": num_train - 1}[layout_name]  # fmt: skip


def check_data(cfg, batch_size: int, num_train: int) -> None:
  """A one-line warning where the loss config is legal but surely not meant on this data:
  more hard negatives (loss.num_hard) than an anchor has, which keeps them all."""
  if not SPECS[cfg.name].hard or cfg.hard_fraction is not None:
    return
  k = num_negatives(cfg.layout, batch_size, num_train)
  if cfg.num_hard > k:
    logs.warn(
      f"loss.num_hard={cfg.num_hard} is more than the {k:,} negatives an anchor has "
      f"(loss.layout={cfg.layout!r}, batch {batch_size}): {cfg.name} keeps all of them, as "
      "the plain loss would; set loss.num_hard or loss.hard_fraction below that."
    )


def uses_bank(cfg) -> bool:
  """Whether the loss config `cfg` keeps an NPID memory bank in the train state."""
  return cfg.layout == "memory_bank" and "memory_bank" in spec(cfg).layouts


def objective(cfg, z1, z2, *, indices, bank, key, temperature=None, mesh=None):
  """The configured loss on projections z1, z2 [B, D], and similarity statistics.

  Args:
    cfg: the config's loss section.
    z1, z2: projections of the two views [B, D].
    indices: the batch's dataset indices [B] (the memory bank's rows).
    bank: the memory bank [num_train, D], or None.
    key: PRNG key of the step's random draws (the SWD projections).
    temperature: a scalar, possibly traced (or [2B], one per anchor), replacing
      `cfg.temperature`.
    mesh: the mesh whose "data" axis shards the batch (for the tiled kernels).

  Returns:
    (scalar loss, dict of scalar diagnostics): `loss` and `diagnostics`.
  """
  value = loss(cfg, z1, z2, indices=indices, bank=bank, key=key, temperature=temperature, mesh=mesh)
  return value, diagnostics(cfg, z1, z2, indices=indices, bank=bank, temperature=temperature)


def loss(cfg, z1, z2, *, indices, bank, key, temperature=None, mesh=None):
  """The scalar loss `cfg` names on projections z1, z2 [B, D] (arguments as `objective`).

  With `cfg.block_size` (or for a loss of the views themselves), the spec's `views`
  form; `mesh`, the device mesh whose "data" axis shards the batch, then gives each
  device its own rows' tiles (`losses.nt_xent`). Otherwise the spec's per-anchor
  kernel on the layout's similarities, averaged.
  """
  s = spec(cfg)
  z1, z2 = numerics.as_compute(z1), numerics.as_compute(z2)
  tau = cfg.temperature if temperature is None else temperature
  block_size = cfg.get("block_size")
  if block_size is not None and cfg.layout == "memory_bank":
    return s.bank(cfg, z1, z2, tau, bank=bank, indices=indices, block_size=block_size, mesh=mesh)
  if s.per_anchor is None or block_size is not None:
    return s.views(cfg, z1, z2, tau, key=key, block_size=block_size, mesh=mesh, layout=cfg.layout)
  pos, neg, mask = layout(cfg.layout, z1, z2, bank, indices)
  return jnp.mean(s.per_anchor(pos, neg, mask, cfg, tau))


def _applied(s: LossSpec, cfg, pos, tau):
  """The temperature the loss applies (MACL's adaptive one), and the spec's extras."""
  extra = {} if s.extra_diagnostics is None else s.extra_diagnostics(cfg, pos, tau)
  applied = tau if s.applied_temperature is None else s.applied_temperature(cfg, pos, tau)
  return applied, extra


def _logged(tau):
  return jnp.mean(jnp.asarray(tau, jnp.float32))  # a per-sample tau: the batch's mean


def diagnostics(cfg, z1, z2, *, indices, bank, temperature=None):
  """Similarity statistics of a batch for logging (no gradient flows through them).

  The positive and mean negative similarity, the mean hardest negative, the mean
  entropy of the relative penalty (Wang & Liu's hardness measure, through one
  extra gradient of the loss), the temperature the loss applied, and the batch's
  alignment and uniformity. The trainer computes them on logged steps only.
  With `cfg.block_size`, those that need the whole similarity matrix are left out.
  """
  s = spec(cfg)
  z1, z2 = numerics.as_compute(z1), numerics.as_compute(z2)
  tau = cfg.temperature if temperature is None else temperature
  name = s.stats_layout or cfg.layout
  if cfg.get("block_size") is not None:
    return _tiled_stats(s, cfg, name, z1, z2, tau, bank, indices)
  pos, neg, mask = layout(name, z1, z2, bank, indices)
  applied, extra = _applied(s, cfg, pos, tau)
  return jax.lax.stop_gradient(
    {
      "pos_sim": jnp.mean(pos),
      "neg_sim": jnp.sum(jnp.where(mask, neg, 0.0)) / jnp.sum(mask),
      "neg_sim_max": jnp.mean(jnp.max(jnp.where(mask, neg, -jnp.inf), axis=-1)),
      "penalty_entropy": jnp.mean(
        analysis.penalty_entropy(pos, neg, temperature=applied, neg_mask=mask)
      ),
      "temperature": _logged(applied),
      "batch_alignment": metrics.alignment(z1, z2),
      "batch_uniformity": metrics.uniformity(z1),
      **extra,
    }
  )


def _tiled_stats(s: LossSpec, cfg, name, z1, z2, tau, bank, indices):
  """`diagnostics` without any [2B, 2B] (or [2B, M]) array.

  The ones that need the whole similarity matrix (the hardest negative, the
  penalty entropy) are left out; the mean negative similarity comes from closed
  forms: SimCLR's sum_{i != j} s_ij = |sum_i h_i|^2 - sum_i |h_i|^2 over H =
  concat(h1, h2), less the positives; the cross-view layout's (sum_i h1_i) .
  (sum_j h2_j) less the positives; the memory bank's h_i . (sum_j b_j - b_own(i)) /
  (M - 1) for each anchor.
  """
  h1, h2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  pos_half = jnp.sum(h1 * h2, axis=-1)
  applied, extra = _applied(s, cfg, pos_half, tau)
  n = h1.shape[0]
  if name == "memory_bank":
    b = numerics.l2_normalize(bank)
    others = jnp.sum(b, axis=0)[None, :] - b[indices]  # [B, D]: every entry but the own
    neg_sim = jnp.mean(jnp.sum((h1 + h2) * others, axis=-1)) / (2 * max(b.shape[0] - 1, 1))
  elif name == "cross_view":
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
      "temperature": _logged(applied),
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
