"""Building `(pos, neg, neg_mask)` for the similarity-level loss kernels.

One set of kernels (`contrastive.losses`) serves every layout of negatives in the
three papers; this module turns embeddings into that common form:

* `simclr_pairs`: SimCLR's in-batch layout. 2N anchors (both views); each has one
  positive (the other view of its image) and 2N-2 negatives (every other view in
  the batch; the anchor itself is excluded).
* `cross_view_pairs`: negatives from the other view only, N-1 per anchor. This is
  the RandBit notebook's layout (Chen et al., both directions summed) and the
  layout of MACL's first release (one direction).
* `memory_bank_pairs`: an NPID-style memory bank (Wu et al. 2018), used by Wang &
  Liu: each anchor contrasts with the bank entries of all other instances.

Negatives are returned as a dense similarity matrix with a boolean mask rather than
gathered into `[N, K]` rows: the masked matrix costs no copy, and under `jax.jit`
over a device mesh the matrix is built from the global batch, so the negatives come
from every device without a hand-written gather.

All inputs are L2-normalised here (idempotent on normalised inputs), in at least
float32. Similarities use the default matmul precision, like the rest of the model;
set `jax_default_matmul_precision` for full float32 matmuls on TPU and GPU.
"""

import jax
import jax.numpy as jnp

from contrastive import numerics


def check_views(z1: jax.Array, z2: jax.Array) -> None:
  if z1.ndim != 2 or z1.shape != z2.shape:
    raise ValueError(
      f"z1 and z2 must both be [N, D] with the same shape, got {z1.shape} and {z2.shape}."
    )


def simclr_pairs(z1: jax.Array, z2: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """SimCLR's 2N-2 layout.

  Args:
    z1: [N, D] first views.
    z2: [N, D] second views; row i is the positive of `z1[i]`.

  Returns:
    pos: [2N] positive similarities; anchors are `concat([z1, z2])`.
    neg: [2N, 2N] similarities of each anchor with every view.
    neg_mask: [2N, 2N] bool, False on the anchor itself and on its positive, so
      each anchor has exactly 2N-2 negatives.

  References:
    Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", ICML 2020, Eq. 1.
  """
  check_views(z1, z2)
  z1, z2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  n = z1.shape[0]
  z = jnp.concatenate([z1, z2], axis=0)
  sim = z @ z.T
  pos_half = jnp.sum(z1 * z2, axis=-1)
  pos = jnp.concatenate([pos_half, pos_half])
  idx = jnp.arange(2 * n)
  partner = (idx + n) % (2 * n)
  neg_mask = (idx[None, :] != idx[:, None]) & (idx[None, :] != partner[:, None])
  return pos, sim, neg_mask


def cross_view_pairs(
  z1: jax.Array, z2: jax.Array, *, symmetric: bool = True
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Cross-view layout: N-1 negatives per anchor, all from the other view.

  Args:
    z1: [N, D] first views.
    z2: [N, D] second views; row i is the positive of `z1[i]`.
    symmetric: if True, both directions (anchors `z1` against `z2`, then `z2`
      against `z1`; 2N anchors, as the RandBit notebook sums); if False, only `z1`
      as anchors (N anchors, as MACL's first release).

  Returns:
    pos: [2N] (or [N]) positive similarities.
    neg: [2N, N] (or [N, N]) similarities with every view of the other side.
    neg_mask: same shape as `neg`, False on the positive.
  """
  check_views(z1, z2)
  z1, z2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  sim = z1 @ z2.T
  pos = jnp.diagonal(sim)
  neg_mask = ~jnp.eye(z1.shape[0], dtype=bool)
  if not symmetric:
    return pos, sim, neg_mask
  return (
    jnp.concatenate([pos, pos]),
    jnp.concatenate([sim, sim.T], axis=0),
    jnp.concatenate([neg_mask, neg_mask], axis=0),
  )


def memory_bank_pairs(
  z: jax.Array, positive: jax.Array, bank: jax.Array, indices: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Memory-bank layout: negatives are the bank entries of all other instances.

  Args:
    z: [N, D] anchor features of the batch.
    positive: [N, D] each anchor's positive: the other view's feature, or the
      anchor's own bank entry `bank[indices]` (NPID's non-parametric classifier).
    bank: [M, D] one feature per training instance (an EMA, see NPID).
    indices: [N] int, the training-set index of each anchor; its own bank entry is
      masked out of its negatives.

  Returns:
    pos: [N], neg: [N, M], neg_mask: [N, M] (False at the anchor's own entry), so
    each anchor has M-1 negatives.

  References:
    Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
    Discrimination", CVPR 2018; Wang & Liu, CVPR 2021, Sec. 5.
  """
  if z.shape != positive.shape or z.ndim != 2 or bank.ndim != 2:
    raise ValueError(
      f"z and positive must be [N, D] and bank [M, D], got {z.shape}, "
      f"{positive.shape}, {bank.shape}."
    )
  if bank.shape[1] != z.shape[1] or indices.shape != (z.shape[0],):
    raise ValueError(
      f"bank must be [M, {z.shape[1]}] and indices [{z.shape[0]}], got "
      f"{bank.shape} and {indices.shape}."
    )
  z, positive = numerics.l2_normalize(z), numerics.l2_normalize(positive)
  bank = numerics.l2_normalize(bank)
  pos = jnp.sum(z * positive, axis=-1)
  neg = z @ bank.T
  neg_mask = jnp.arange(bank.shape[0])[None, :] != indices[:, None]
  return pos, neg, neg_mask
