"""Losses against an NPID memory bank, dense or over tiles.

The memory-bank layout (Wu et al.'s NPID, Wang & Liu's setting): both views of a
batch are anchors, each the other's positive, and the negatives of an anchor are
every bank entry but its own instance's. Densely that is a [2B, M] similarity matrix
and a [2B, M] mask (`pairs.memory_bank_pairs`); at M = 50,000 (CIFAR) a few of them
fit, at M in the millions they do not. Tiled (`block_size`), each anchor's log-sum-
exp over the bank is formed tile by tile (`blockwise.row_logsumexp`, or its running
top-k for the hard loss), and the own-instance exclusion is an index comparison
inside each tile (the anchor's dataset index against the column's), so neither the
matrix nor the mask ever exists: memory O((B + M) D + block_size^2).

The bank is a moving average of features, not a parameter: no gradient reaches it.
"""

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from contrastive import blockwise
from contrastive import numerics
from contrastive import pairs
from contrastive.kernels import infonce


def bank_pairs(z1, z2, bank, indices):
  """(pos, neg, neg_mask) of the dense layout: anchors concat(z1, z2), positives
  concat(z2, z1), negatives the bank entries of every other instance."""
  both = jnp.concatenate([indices, indices])
  return pairs.memory_bank_pairs(
    jnp.concatenate([z1, z2]), jnp.concatenate([z2, z1]), jax.lax.stop_gradient(bank), both
  )


def bank_log_odds(z1, z2, bank, indices, temperature, *, block_size: int, num_hard=None,
                  mesh=None, axis: str = "data"):  # fmt: skip
  """(pos [2B], d [2B]) over tiles: each anchor's positive similarity and d_i =
  logsumexp over its negatives (or its `num_hard` hardest) of (s_ij - s_ii) / tau.

  Given a `mesh` whose `axis` shards z1, z2 and indices by rows (the trainer's
  data-parallel batch), each device tiles its own anchors against the whole
  (replicated) bank (`jax.shard_map`); without one, XLA places the loop.
  """
  pairs.check_views(jnp.asarray(z1), jnp.asarray(z2))
  h1, h2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  cols = jax.lax.stop_gradient(numerics.l2_normalize(bank))

  def local(h1, h2, ids, cols, tau):
    rows = jnp.concatenate([h1, h2])
    pos = jnp.sum(rows * jnp.concatenate([h2, h1]), axis=-1)
    both = jnp.concatenate([ids, ids])
    tiles = dict(block_size=block_size, mask="not_self", row_ids=both)
    if num_hard is None:
      return pos, blockwise.row_logsumexp(rows, cols, pos, tau, **tiles)
    return pos, blockwise.row_hard_logsumexp(rows, cols, pos, tau, num_hard=num_hard, **tiles)

  if mesh is None or mesh.shape[axis] == 1:
    return local(h1, h2, indices, cols, temperature)
  if h1.shape[0] % mesh.shape[axis]:
    raise ValueError(
      f"N = {h1.shape[0]} views do not divide over the {mesh.shape[axis]} devices of {axis!r}."
    )

  def sharded(h1, h2, ids, cols, tau):
    # tau and the bank are the same everywhere; typed as varying, their cotangents (a
    # per-device partial sum) are summed over the devices by autodiff (as in
    # views_logsumexp; the bank's is dropped, it is a stop_gradient).
    vary = lambda x: jax.lax.pcast(x, (axis,), to="varying")  # noqa: E731
    pos, d = local(h1, h2, ids, vary(cols), vary(tau))
    n = h1.shape[0]  # back to the two views' halves, each sharded by rows
    return pos[:n], pos[n:], d[:n], d[n:]

  rows = P(axis)
  p1, p2, d1, d2 = jax.shard_map(
    sharded, mesh=mesh, in_specs=(rows, rows, rows, P(), P()), out_specs=(rows,) * 4
  )(h1, h2, jnp.asarray(indices, jnp.int32), cols, jnp.asarray(temperature))
  return jnp.concatenate([p1, p2]), jnp.concatenate([d1, d2])


def bank_nt_xent(z1, z2, bank, indices, *, temperature, block_size=None, mesh=None):
  """The contrastive loss (Wang & Liu Eq. 1) in the memory-bank layout, the mean over
  the 2B anchors.

  Args:
    z1, z2: [B, D] views (L2-normalised inside); row i of each is instance
      indices[i].
    bank: [M, D] one feature per training instance (normalised inside), M >= 2.
    indices: [B] int, the batch's dataset indices (bank rows).
    temperature: tau > 0.
    block_size: None for the dense [2B, M] similarities; an integer for tiles of
      that side, memory O((B + M) D + block_size^2).
    mesh: with block_size, the mesh whose "data" axis shards the batch.
  """
  numerics.check_positive("temperature", temperature)
  if block_size is None:
    pos, neg, mask = bank_pairs(z1, z2, bank, indices)
    return jnp.mean(infonce.contrastive_loss(pos, neg, temperature=temperature, neg_mask=mask))
  _, d = bank_log_odds(z1, z2, bank, indices, temperature, block_size=block_size, mesh=mesh)
  return jnp.mean(jax.nn.softplus(d))


def hard_bank_nt_xent(z1, z2, bank, indices, *, temperature, num_hard=None, hard_fraction=None,
                      block_size=None, mesh=None):  # fmt: skip
  """The hard contrastive loss (Wang & Liu Eq. 9) in the memory-bank layout: each
  anchor keeps the `num_hard` most similar of its M - 1 bank negatives (or
  ceil(hard_fraction x M), M counted as the dense layout's columns); arguments as
  `bank_nt_xent`. Tiled, a running top-k per anchor over the bank's tiles."""
  numerics.check_positive("temperature", temperature)
  if block_size is None:
    pos, neg, mask = bank_pairs(z1, z2, bank, indices)
    per_anchor = infonce.hard_contrastive_loss(
      pos, neg, temperature=temperature, num_hard=num_hard, hard_fraction=hard_fraction,
      neg_mask=mask,
    )  # fmt: skip
    return jnp.mean(per_anchor)
  k = infonce.resolve_num_hard(bank.shape[0], num_hard=num_hard, hard_fraction=hard_fraction)
  _, d = bank_log_odds(z1, z2, bank, indices, temperature, block_size=block_size, num_hard=k,
                       mesh=mesh)  # fmt: skip
  return jnp.mean(jax.nn.softplus(d))
