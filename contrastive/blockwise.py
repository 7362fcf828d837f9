"""Blockwise (tiled) log-sum-exp over a similarity matrix that is never materialised.

InfoNCE-type losses need, for each anchor row i, d_i = logsumexp_j((r_i . c_j -
shift_i) / tau) over the valid columns j. The dense kernels build the whole
[M, K] similarity matrix (and autodiff keeps it, and its softmax, for the backward
pass), so memory grows as M x K: at 2N = 131,072 one float32 matrix is 64 GiB.

`row_logsumexp` computes d tile by tile: rows and columns are cut into blocks of
`block_size`, each [block, block] tile of similarities is formed, folded into a
running (max, sum of exponentials) per row, and dropped. Only d (one number a row)
is saved for the backward pass, a hand-written `jax.custom_vjp` that recomputes
each tile to form its softmax weights. Memory is O((M + K) x D + block_size^2);
compute is one extra similarity matmul per tile against autodiff of the dense form
(forward 1 and backward 3 matmuls a tile, against 1 and 2).

The same flash-attention-style online softmax underlies Inf-CL (Wang et al.,
"Breaking the Memory Barrier: Near Infinite Batch Size Scaling for Contrastive
Loss", 2024); this is an independent implementation in JAX. `losses.nt_xent` and
`losses.generalized_contrastive_loss` use it when given `block_size`.

Masks are structural, named by `mask` (a static string), so no [M, K] mask exists:
  "all": every column; "not_self": j != i (rows and columns the same set);
  "not_self_or_partner": j != i and j != (i + M/2) mod M (SimCLR's 2N - 2
  negatives, anchors concat(z1, z2)).
Rows past M and columns past K (padding when block_size does not divide them) are
always invalid. A row with no valid column gets d = 0 and zero gradients.
"""

import functools

import jax
import jax.numpy as jnp

MASKS = ("all", "not_self", "not_self_or_partner")


def _pad_blocks(x, block):
  n = x.shape[0]
  pad = -n % block
  if pad:
    x = jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)])
  return x.reshape(-1, block, *x.shape[1:])


def _tile(r_blk, c_blk, shift_blk, tau, i0, j0, *, num_rows, num_cols, mask):
  """(X, valid) of one tile: X = (r . c - shift) / tau, valid its structural mask."""
  s = jnp.dot(r_blk, c_blk.T, preferred_element_type=tau.dtype)
  x = (s - shift_blk[:, None]) / tau
  i = i0 + jnp.arange(r_blk.shape[0])[:, None]
  j = j0 + jnp.arange(c_blk.shape[0])[None, :]
  valid = (i < num_rows) & (j < num_cols)
  if mask in ("not_self", "not_self_or_partner"):
    valid &= i != j
  if mask == "not_self_or_partner":
    valid &= j != (i + num_rows // 2) % num_rows
  return x, valid


def _check(rows, cols, shift, block_size, mask):
  if mask not in MASKS:
    raise ValueError(f"Unknown mask {mask!r}; valid: {', '.join(MASKS)}.")
  if not isinstance(block_size, int) or block_size < 1:
    raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")
  if rows.ndim != 2 or cols.ndim != 2 or rows.shape[1] != cols.shape[1]:
    raise ValueError(f"rows must be [M, D] and cols [K, D], got {rows.shape} and {cols.shape}.")
  if shift.shape != rows.shape[:1]:
    raise ValueError(f"shift must be [M] = {rows.shape[:1]}, got {shift.shape}.")
  if mask != "all" and rows.shape[0] != cols.shape[0]:
    raise ValueError(f"mask {mask!r} needs as many rows as columns, got {rows.shape[0]} and "
                     f"{cols.shape[0]}.")  # fmt: skip
  if mask == "not_self_or_partner" and rows.shape[0] % 2:
    raise ValueError(f"mask {mask!r} needs an even number of rows, got {rows.shape[0]}.")


def row_logsumexp(rows, cols, shift, temperature, *, block_size: int, mask: str = "all"):
  """d_i = logsumexp over valid j of (rows_i . cols_j - shift_i) / temperature, tiled.

  Args:
    rows: [M, D] anchors (bfloat16 inputs are computed in float32).
    cols: [K, D] candidates.
    shift: [M] per-row offset (the positive's similarity, for an accurate softplus).
    temperature: tau > 0, a Python or traced scalar (vmap-able, differentiable).
    block_size: tile side; need not divide M or K.
    mask: which columns count for each row (`MASKS`).

  Returns:
    d: [M] in the inputs' float dtype (at least float32), 0 for a row without a
    valid column.
  """
  _check(rows, cols, shift, block_size, mask)
  dtype = jnp.result_type(rows.dtype, cols.dtype, jnp.float32)
  tau = jnp.asarray(temperature, dtype)
  rows, cols, shift = rows.astype(dtype), cols.astype(dtype), shift.astype(dtype)
  return _row_lse(rows, cols, shift, tau, block_size, mask)


def _forward(rows, cols, shift, tau, block, mask):
  num_rows, num_cols = rows.shape[0], cols.shape[0]
  r_blocks, c_blocks = _pad_blocks(rows, block), _pad_blocks(cols, block)
  s_blocks = _pad_blocks(shift, block)
  tile = functools.partial(_tile, num_rows=num_rows, num_cols=num_cols, mask=mask)

  def row_block(args):
    bi, r_blk, shift_blk = args

    def col_step(carry, cargs):
      m, total = carry
      bj, c_blk = cargs
      x, valid = tile(r_blk, c_blk, shift_blk, tau, bi * block, bj * block)
      x = jnp.where(valid, x, -jnp.inf)
      m_new = jnp.maximum(m, jnp.max(x, axis=1))
      safe = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
      total = total * jnp.exp(m - safe) + jnp.sum(jnp.exp(x - safe[:, None]), axis=1)
      return (m_new, total), None

    init = (jnp.full((block,), -jnp.inf, tau.dtype), jnp.zeros((block,), tau.dtype))
    (m, total), _ = jax.lax.scan(col_step, init, (jnp.arange(c_blocks.shape[0]), c_blocks))
    has = total > 0
    return jnp.where(has, m + jnp.log(jnp.where(has, total, 1.0)), 0.0)

  d = jax.lax.map(row_block, (jnp.arange(r_blocks.shape[0]), r_blocks, s_blocks))
  return d.reshape(-1)[:num_rows]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _row_lse(rows, cols, shift, tau, block, mask):
  return _forward(rows, cols, shift, tau, block, mask)


def _row_lse_fwd(rows, cols, shift, tau, block, mask):
  d = _forward(rows, cols, shift, tau, block, mask)
  return d, (rows, cols, shift, tau, d)


def _row_lse_bwd(block, mask, res, g):
  rows, cols, shift, tau, d = res
  num_rows, num_cols = rows.shape[0], cols.shape[0]
  r_blocks, c_blocks = _pad_blocks(rows, block), _pad_blocks(cols, block)
  s_blocks, d_blocks = _pad_blocks(shift, block), _pad_blocks(d, block)
  g = g.astype(tau.dtype)
  g_blocks = _pad_blocks(g, block)
  tile = functools.partial(_tile, num_rows=num_rows, num_cols=num_cols, mask=mask)

  def row_block(d_cols, args):
    bi, r_blk, shift_blk, d_blk, g_blk = args

    def col_step(carry, cargs):
      d_r, ws, wx = carry
      bj, c_blk = cargs
      x, valid = tile(r_blk, c_blk, shift_blk, tau, bi * block, bj * block)
      w = jnp.where(valid, jnp.exp(jnp.where(valid, x - d_blk[:, None], 0.0)), 0.0)
      # dL/ds_ij = g_i w_ij / tau: the cotangent of this tile's similarities.
      gs = (g_blk / tau)[:, None] * w
      d_r = d_r + jnp.dot(gs, c_blk, preferred_element_type=tau.dtype)
      d_c = jnp.dot(gs.T, r_blk, preferred_element_type=tau.dtype)
      ws = ws + jnp.sum(w, axis=1)
      wx = wx + jnp.sum(w * jnp.where(valid, x, 0.0), axis=1)
      return (d_r, ws, wx), d_c

    zeros = jnp.zeros((block,), tau.dtype)
    init = (jnp.zeros(r_blk.shape, tau.dtype), zeros, zeros)
    (d_r, ws, wx), d_c = jax.lax.scan(col_step, init, (jnp.arange(c_blocks.shape[0]), c_blocks))
    return d_cols + d_c, (d_r, ws, wx)

  d_cols, (d_rows, ws, wx) = jax.lax.scan(
    row_block,
    jnp.zeros(c_blocks.shape, tau.dtype),
    (jnp.arange(r_blocks.shape[0]), r_blocks, s_blocks, d_blocks, g_blocks),
  )
  ws, wx = ws.reshape(-1)[:num_rows], wx.reshape(-1)[:num_rows]
  # d(d_i)/d(shift_i) = -sum_j w_ij / tau (1 / tau, or 0 on a row without columns).
  d_shift = -g * ws / tau
  d_tau = -jnp.sum(g * wx) / tau
  return (
    d_rows.reshape(-1, rows.shape[1])[:num_rows],
    d_cols.reshape(-1, cols.shape[1])[:num_cols],
    d_shift,
    d_tau,
  )


_row_lse.defvjp(_row_lse_fwd, _row_lse_bwd)
