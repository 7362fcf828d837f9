"""Representation metrics: uniformity, tolerance, alignment, local separation.

All take raw features and L2-normalise them inside (in at least float32). The
pairwise ones work on row blocks of the N x N similarity matrix, never the whole
of it, so 50,000 x 128 features fit in well under 2 GiB; tolerance needs no
pairwise matrix at all (per-class sums).
"""

import math

import jax
import jax.numpy as jnp

from contrastive import numerics

# Rows of the similarity matrix formed at once: a [1024, N] float32 block is 205 MB
# at N = 50,000.
DEFAULT_BLOCK_SIZE = 1024


def _map_row_blocks(fn, rows, block_size):
  """Applies `fn(row_block, row_ids)` to row blocks of `rows`, sequentially.

  Args:
    fn: maps a [B, D] block and its [B] global row indices to per-row results
      (a pytree of [B, ...] arrays). Padding rows have indices >= N.
    rows: [N, D].
    block_size: B, the rows per block (clipped to N).

  Returns:
    `fn`'s per-row results for the N real rows, concatenated.
  """
  n = rows.shape[0]
  b = max(1, min(block_size, n))
  num_blocks = math.ceil(n / b)
  padded = jnp.pad(rows, ((0, num_blocks * b - n), (0, 0)))
  ids = jnp.arange(num_blocks * b).reshape(num_blocks, b)
  out = jax.lax.map(lambda a: fn(*a), (padded.reshape(num_blocks, b, -1), ids))
  return jax.tree.map(lambda x: x.reshape((num_blocks * b,) + x.shape[2:])[:n], out)


def uniformity(z, *, t=2.0, block_size=DEFAULT_BLOCK_SIZE) -> jax.Array:
  """Uniformity as the papers' tables report it: -L_unif (`uniformity_loss`), higher
  is more uniform: 0 for identical points, about 2t = 4 at most for many points (their
  mean squared distance on the sphere is at most about 2).

  The one sign of uniformity in this codebase: results.json's and the console's
  `uniformity`, the logged `batch_uniformity` and every report are this figure;
  `uniformity_loss` (results.json's `uniformity_loss`) is Wang & Isola's loss.
  """
  return -uniformity_loss(z, t=t, block_size=block_size)


def uniformity_loss(z, *, t=2.0, block_size=DEFAULT_BLOCK_SIZE) -> jax.Array:
  """Wang & Isola's uniformity loss L_unif: log of the mean over pairs i < j of
  exp(-t ||z_i - z_j||^2). Lower is more uniform; `uniformity` is its negative.

  Args:
    z: [N, D] features, N >= 2.
    t: the kernel's scale (2 in Wang & Isola and Wang & Liu).
    block_size: rows of the similarity matrix formed at once.

  Returns:
    Scalar L_unif.

  References:
    Wang & Isola, "Understanding Contrastive Representation Learning through
    Alignment and Uniformity on the Hypersphere", ICML 2020; Wang & Liu, CVPR 2021,
    Sec. 4.1.
  """
  z = numerics.l2_normalize(z)
  n = z.shape[0]
  if n < 2:
    raise ValueError(f"uniformity needs at least 2 features, got {n}.")

  def row_sums(block, ids):
    # ||z_i - z_j||^2 = 2 - 2 s_ij on the unit sphere; clamped against rounding.
    sq_dist = jnp.maximum(2.0 - 2.0 * (block @ z.T), 0.0)
    keep = ids[:, None] != jnp.arange(n)[None, :]
    return jnp.sum(jnp.where(keep, jnp.exp(-t * sq_dist), 0.0), axis=-1)

  total = jnp.sum(_map_row_blocks(row_sums, z, block_size))
  # The sum over ordered pairs i != j is twice the sum over i < j.
  return jnp.log(total / (float(n) * (n - 1)))  # n(n-1) overflows int32 at 50,000


def tolerance(z, labels) -> jax.Array:
  """Tolerance: the mean similarity z_i . z_j over pairs i != j of the same label.

  Computed from per-class sums S_c: sum over same-class pairs = sum_c ||S_c||^2 -
  sum_i ||z_i||^2, exact and O(N D). Labels may be any integers (no class count is
  needed, so it jits). Normalising over all pairs instead would cap CIFAR-10 near
  0.1, yet Wang & Liu report up to 0.61, so the mean is over same-class pairs.

  Args:
    z: [N, D] features.
    labels: [N] integer labels.

  Returns:
    Scalar tolerance; NaN if no two features share a label.

  References:
    Wang & Liu, CVPR 2021, Eq. 11.
  """
  z = numerics.l2_normalize(z)
  labels = jnp.asarray(labels)
  if labels.shape != (z.shape[0],):
    raise ValueError(f"labels must be [{z.shape[0]}], got {labels.shape}.")
  n = z.shape[0]
  order = jnp.argsort(labels)
  sorted_labels = labels[order]
  segment = jnp.concatenate(
    [jnp.zeros(1, jnp.int32), jnp.cumsum(sorted_labels[1:] != sorted_labels[:-1])]
  )
  class_sums = jax.ops.segment_sum(z[order], segment, num_segments=n)
  counts = jax.ops.segment_sum(jnp.ones(n, z.dtype), segment, num_segments=n)
  same_pairs = jnp.sum(jnp.square(class_sums)) - jnp.sum(jnp.square(z))
  return same_pairs / jnp.sum(counts * (counts - 1))


def alignment(z1, z2, *, alpha=2.0) -> jax.Array:
  """Alignment: mean over positive pairs of ||z1_i - z2_i||^alpha.

  Args:
    z1: [N, D] features of one view.
    z2: [N, D] features of the other view (row i is z1[i]'s positive).
    alpha: the exponent (2 in Wang & Isola).

  Returns:
    Scalar alignment loss (lower = better aligned).

  References:
    Wang & Isola, ICML 2020, Sec. 4.1.1.
  """
  z1, z2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  if z1.shape != z2.shape:
    raise ValueError(f"z1 and z2 must have the same shape, got {z1.shape}, {z2.shape}.")
  sq = jnp.sum(jnp.square(z1 - z2), axis=-1)
  if alpha == 2:
    return jnp.mean(sq)
  # ||d||^alpha = sq^(alpha / 2) has an infinite derivative in sq at an aligned pair
  # (sq = 0) for alpha < 2; times d(sq) = 0 that is NaN. The pair's gradient there is
  # 0 (as Wang & Isola's torch `norm().pow(alpha)` gives), so such pairs go through
  # a branch that never sees 0.
  aligned = sq == 0
  return jnp.mean(jnp.where(aligned, 0.0, jnp.power(jnp.where(aligned, 1.0, sq), alpha / 2)))


def local_separation(z1, z2, *, k=10, block_size=DEFAULT_BLOCK_SIZE) -> jax.Array:
  """The similarity profile of each anchor's positive and its k nearest negatives.

  For anchor z1[i]: its positive similarity z1[i] . z2[i], and its k largest
  negative similarities z1[i] . z2[j] (j != i), sorted in decreasing order;
  each averaged over anchors. With `z2` a memory bank indexed like `z1`, the
  negatives are the bank entries of the other instances.

  Args:
    z1: [N, D] anchors.
    z2: [N, D] positives; the other rows serve as negatives. N > k.
    k: the number of nearest negatives (10 in the paper's Fig. 8).
    block_size: rows of the similarity matrix formed at once.

  Returns:
    [k + 1]: the mean positive similarity, then the means of the 1st, ..., k-th
    largest negative similarities ("pos, n1..n10").

  References:
    Wang & Liu, CVPR 2021, Sec. 4.3 and Fig. 8.
  """
  z1, z2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  n = z1.shape[0]
  if z1.shape != z2.shape or n <= k:
    raise ValueError(
      f"z1 and z2 must be the same [N, D] with N > k={k}, got {z1.shape}, {z2.shape}."
    )

  def profile(block, ids):
    sim = block @ z2.T
    is_pos = ids[:, None] == jnp.arange(n)[None, :]
    pos = jnp.sum(jnp.where(is_pos, sim, 0.0), axis=-1)
    top, _ = jax.lax.top_k(jnp.where(is_pos, -jnp.inf, sim), k)
    return jnp.concatenate([pos[:, None], top], axis=-1)

  return jnp.mean(_map_row_blocks(profile, z1, block_size), axis=0)
