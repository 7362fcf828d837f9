"""Losses on a batch's two views z1, z2 [N, D]: NT-Xent, the hard contrastive loss and
DCL, dense (the layout's similarity matrix) or over tiles (`contrastive.blockwise`).

The shared pieces (`two_view_pairs`, `simclr_views`, `simclr_log_odds`) serve the
other families' views-level losses (`macl.macl_nt_xent`) too.
"""

import jax
import jax.numpy as jnp

from contrastive import blockwise
from contrastive import numerics
from contrastive import pairs
from contrastive.kernels import infonce


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
    pos, neg, neg_mask = two_view_pairs(z1, z2, layout)
    return jnp.mean(infonce.contrastive_loss(pos, neg, temperature=temperature, neg_mask=neg_mask))
  numerics.check_positive("temperature", temperature)
  h1, h2, pos = simclr_views(z1, z2)
  d = simclr_log_odds(h1, h2, pos, temperature, block_size, mesh, layout)
  return mean_over_anchors(jax.nn.softplus(d))


def two_view_pairs(z1, z2, layout):
  """(pos, neg, neg_mask) of `layout` ("simclr" or "cross_view", symmetric)."""
  if layout == "cross_view":
    return pairs.cross_view_pairs(z1, z2, symmetric=True)
  if layout != "simclr":
    raise ValueError(f"Unknown layout {layout!r}; valid: simclr, cross_view.")
  return pairs.simclr_pairs(z1, z2)


def simclr_views(z1, z2):
  """The normalised views h1, h2 [N, D] and each anchor's positive similarity [2N]."""
  pairs.check_views(jnp.asarray(z1), jnp.asarray(z2))
  h1, h2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  pos_half = jnp.sum(h1 * h2, axis=-1)
  return h1, h2, jnp.concatenate([pos_half, pos_half])


def simclr_log_odds(h1, h2, pos, temperature, block_size, mesh, layout, num_hard=None):
  """d_i = logsumexp over the negatives of `layout` (or the num_hard hardest) of
  (s_ik - s_ii) / tau, tiled."""
  mask = "not_self" if layout == "cross_view" else "not_self_or_partner"
  return blockwise.views_logsumexp(
    h1, h2, pos, temperature, block_size=block_size, mask=mask, num_hard=num_hard, mesh=mesh,
    layout=layout,
  )  # fmt: skip


def mean_over_anchors(loss):
  return jnp.mean(loss) if loss.shape[0] > 2 else jnp.zeros((), loss.dtype)  # no negatives


def hard_nt_xent(
  z1, z2, *, temperature, num_hard=None, hard_fraction=None, block_size=None, mesh=None,
  layout="simclr",
) -> jax.Array:  # fmt: skip
  """The hard contrastive loss on SimCLR's 2N - 2 layout (or the cross-view one).

  The mean of `infonce.hard_contrastive_loss` over the 2N anchors, each keeping the
  `num_hard` most similar of its 2N - 2 negatives. `hard_fraction` counts, as the
  dense layout's [2N, 2N] columns do, 2N candidates (the anchor's own view and its
  positive included in the count, never selected): ceil(hard_fraction x 2N).

  Args:
    z1, z2: [N, D] views (L2-normalised inside).
    temperature, num_hard, hard_fraction: as `infonce.hard_contrastive_loss`.
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
    pos, neg, neg_mask = two_view_pairs(z1, z2, layout)
    per_anchor = infonce.hard_contrastive_loss(
      pos, neg, temperature=temperature, num_hard=num_hard, hard_fraction=hard_fraction,
      neg_mask=neg_mask,
    )  # fmt: skip
    return jnp.mean(per_anchor)
  numerics.check_positive("temperature", temperature)
  h1, h2, pos = simclr_views(z1, z2)
  columns = h1.shape[0] if layout == "cross_view" else pos.shape[0]  # the dense layout's
  k = infonce.resolve_num_hard(columns, num_hard=num_hard, hard_fraction=hard_fraction)
  d = simclr_log_odds(h1, h2, pos, temperature, block_size, mesh, layout, num_hard=k)
  return mean_over_anchors(jax.nn.softplus(d))


def dcl(z1, z2, *, temperature, block_size=None, mesh=None, layout="simclr") -> jax.Array:
  """The decoupled contrastive loss on two views: the mean of `infonce.dcl_loss` over
  the 2N anchors, SimCLR's 2N - 2 negatives each (or the cross-view layout's N - 1).

  Args:
    z1, z2: [N, D] views (L2-normalised inside); row i of z2 is z1[i]'s positive.
    temperature: tau > 0.
    block_size, mesh, layout: as `nt_xent` (tiled: the same d_i, without softplus).

  Returns:
    Scalar: the mean over the 2N anchors; lightly's `DCLLoss` (without weight_fn).

  References:
    Yeh et al., "Decoupled Contrastive Learning", ECCV 2022.
  """
  if block_size is None:
    pos, neg, neg_mask = two_view_pairs(z1, z2, layout)
    return jnp.mean(infonce.dcl_loss(pos, neg, temperature=temperature, neg_mask=neg_mask))
  numerics.check_positive("temperature", temperature)
  h1, h2, pos = simclr_views(z1, z2)
  return mean_over_anchors(simclr_log_odds(h1, h2, pos, temperature, block_size, mesh, layout))
