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
Loss", 2024); this is an independent implementation in JAX. `losses.nt_xent`,
`hard_nt_xent`, `macl_nt_xent` and `generalized_contrastive_loss` use it when given
`block_size`, through `views_logsumexp`, which on a device mesh gives each device
its own rows (`jax.shard_map`). `row_hard_logsumexp` keeps only each row's top k
(the hard contrastive loss): a running top-k across tiles.

Masks are structural, named by `mask` (a static string), so no [M, K] mask exists;
i is a row's index among the columns (`row_ids`, default the row's position):
  "all": every column; "not_self": j != i; "not_self_or_partner": j != i and
  j != (i + K/2) mod K (SimCLR's 2N - 2 negatives, anchors concat(z1, z2)).
Rows past M and columns past K (padding when block_size does not divide them) are
always invalid. A row with no valid column gets d = 0 and zero gradients.
"""

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

MASKS = ("all", "not_self", "not_self_or_partner")


def _pad_blocks(x, block, fill=0):
  n = x.shape[0]
  pad = -n % block
  if pad:
    x = jnp.concatenate([x, jnp.full((pad, *x.shape[1:]), fill, x.dtype)])
  return x.reshape(-1, block, *x.shape[1:])


def _tile(r_blk, c_blk, shift_blk, ids_blk, tau, j0, *, num_cols, mask):
  """(X, valid) of one tile: X = (r . c - shift) / tau, valid its structural mask.

  `ids_blk` are the rows' indices among the columns (-1 for padding rows), so a
  device holding some of the rows masks their own and their partners' columns."""
  s = jnp.dot(r_blk, c_blk.T, preferred_element_type=tau.dtype)
  x = (s - shift_blk[:, None]) / tau
  i = ids_blk[:, None]
  j = j0 + jnp.arange(c_blk.shape[0])[None, :]
  valid = (i >= 0) & (j < num_cols)
  if mask in ("not_self", "not_self_or_partner"):
    valid &= i != j
  if mask == "not_self_or_partner":
    valid &= j != (i + num_cols // 2) % num_cols
  return x, valid


def _check(rows, cols, shift, block_size, mask, row_ids=None):
  if mask not in MASKS:
    raise ValueError(f"Unknown mask {mask!r}; valid: {', '.join(MASKS)}.")
  if not isinstance(block_size, int) or block_size < 1:
    raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")
  if rows.ndim != 2 or cols.ndim != 2 or rows.shape[1] != cols.shape[1]:
    raise ValueError(f"rows must be [M, D] and cols [K, D], got {rows.shape} and {cols.shape}.")
  if shift.shape != rows.shape[:1]:
    raise ValueError(f"shift must be [M] = {rows.shape[:1]}, got {shift.shape}.")
  if row_ids is not None and row_ids.shape != rows.shape[:1]:
    raise ValueError(f"row_ids must be [M] = {rows.shape[:1]}, got {row_ids.shape}.")
  if mask != "all" and row_ids is None and rows.shape[0] != cols.shape[0]:
    raise ValueError(f"mask {mask!r} needs as many rows as columns (or row_ids), got "
                     f"{rows.shape[0]} and {cols.shape[0]}.")  # fmt: skip
  if mask == "not_self_or_partner" and cols.shape[0] % 2:
    raise ValueError(f"mask {mask!r} needs an even number of columns, got {cols.shape[0]}.")


def row_logsumexp(rows, cols, shift, temperature, *, block_size: int, mask: str = "all",
                  row_ids=None):  # fmt: skip
  """d_i = logsumexp over valid j of (rows_i . cols_j - shift_i) / temperature, tiled.

  Args:
    rows: [M, D] anchors (bfloat16 inputs are computed in float32).
    cols: [K, D] candidates.
    shift: [M] per-row offset (the positive's similarity, for an accurate softplus).
    temperature: tau > 0, a Python or traced scalar (vmap-able, differentiable).
    block_size: tile side; need not divide M or K.
    mask: which columns count for each row (`MASKS`).
    row_ids: [M] int, each row's index among the columns for the masks (rows a
      device holds of a larger set); default 0 ... M - 1.

  Returns:
    d: [M] in the inputs' float dtype (at least float32), 0 for a row without a
    valid column.
  """
  rows, cols, shift, tau, row_ids = _prepare(rows, cols, shift, temperature, block_size, mask,
                                             row_ids)  # fmt: skip
  return _row_lse(rows, cols, shift, tau, row_ids, block_size, mask)


def _prepare(rows, cols, shift, temperature, block_size, mask, row_ids):
  _check(rows, cols, shift, block_size, mask, row_ids)
  dtype = jnp.result_type(rows.dtype, cols.dtype, jnp.float32)
  tau = jnp.asarray(temperature, dtype)
  rows, cols, shift = rows.astype(dtype), cols.astype(dtype), shift.astype(dtype)
  if row_ids is None:
    row_ids = jnp.arange(rows.shape[0])
  return rows, cols, shift, tau, jnp.asarray(row_ids, jnp.int32)


def _row_block(rows, block):
  """Rows a tile takes: `block`, or all of them where there are fewer (a memory bank's
  few anchors against its many columns: padding them to `block` would be waste)."""
  return min(block, rows.shape[0])


def _blocks(rows, cols, shift, row_ids, block, mask):
  """The padded row and column blocks, and the tile function for them."""
  tile = functools.partial(_tile, num_cols=cols.shape[0], mask=mask)
  rb = _row_block(rows, block)
  return (
    _pad_blocks(rows, rb),
    _pad_blocks(cols, block),
    _pad_blocks(shift, rb),
    _pad_blocks(row_ids, rb, fill=-1),
    tile,
  )


def _forward(rows, cols, shift, tau, row_ids, block, mask):
  r_blocks, c_blocks, s_blocks, i_blocks, tile = _blocks(rows, cols, shift, row_ids, block, mask)

  def row_block(args):
    r_blk, shift_blk, ids_blk = args

    def col_step(carry, cargs):
      m, total = carry
      bj, c_blk = cargs
      x, valid = tile(r_blk, c_blk, shift_blk, ids_blk, tau, bj * block)
      x = jnp.where(valid, x, -jnp.inf)
      m_new = jnp.maximum(m, jnp.max(x, axis=1))
      safe = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
      total = total * jnp.exp(m - safe) + jnp.sum(jnp.exp(x - safe[:, None]), axis=1)
      return (m_new, total), None

    # Carries made *_like the inputs, so they vary over a mesh axis as the inputs do
    # (inside `views_logsumexp`'s shard_map).
    init = (jnp.full_like(shift_blk, -jnp.inf), jnp.zeros_like(shift_blk))
    (m, total), _ = jax.lax.scan(col_step, init, (jnp.arange(c_blocks.shape[0]), c_blocks))
    has = total > 0
    return jnp.where(has, m + jnp.log(jnp.where(has, total, 1.0)), 0.0)

  d = jax.lax.map(row_block, (r_blocks, s_blocks, i_blocks))
  return d.reshape(-1)[: rows.shape[0]]


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _row_lse(rows, cols, shift, tau, row_ids, block, mask):
  return _forward(rows, cols, shift, tau, row_ids, block, mask)


def _row_lse_fwd(rows, cols, shift, tau, row_ids, block, mask):
  d = _forward(rows, cols, shift, tau, row_ids, block, mask)
  return d, (rows, cols, shift, tau, row_ids, d)


def _row_lse_bwd(block, mask, res, g):
  return _backward(block, mask, *res, g, selected=None)


def _backward(block, mask, rows, cols, shift, tau, row_ids, d, g, *, selected):
  """Cotangents of (rows, cols, shift, tau, row_ids) for d = row log-sum-exps.

  Tile by tile. `selected` is None (every valid column counts) or [M, k] column
  indices: only those columns count (`row_hard_logsumexp`, whose forward pass chose
  them). The choice travels as indices, not as a threshold to compare recomputed
  similarities against: the forward and backward are separately compiled programs
  that may round the same dot product an ulp apart, and an entry at a threshold
  would then drop out of the gradient (with k = 1, the row's whole negative
  gradient).
  """
  num_rows, num_cols = rows.shape[0], cols.shape[0]
  r_blocks, c_blocks, s_blocks, i_blocks, tile = _blocks(rows, cols, shift, row_ids, block, mask)
  rb = _row_block(rows, block)
  d_blocks = _pad_blocks(d, rb)
  g = g.astype(tau.dtype)
  g_blocks = _pad_blocks(g, rb)
  hard = selected is not None
  if not hard:  # a placeholder, never read: the plain kernel selects nothing
    selected = jnp.zeros((num_rows, 1), jnp.int32)
  sel_blocks = _pad_blocks(selected, rb, fill=-1)

  def row_block(d_cols, args):
    r_blk, shift_blk, ids_blk, d_blk, g_blk, sel_blk = args

    def col_step(carry, cargs):
      d_r, ws, wx = carry
      bj, c_blk = cargs
      x, valid = tile(r_blk, c_blk, shift_blk, ids_blk, tau, bj * block)
      if hard:
        valid &= _among(sel_blk, bj * block, block)
      w = jnp.where(valid, jnp.exp(jnp.where(valid, x - d_blk[:, None], 0.0)), 0.0)
      # dL/ds_ij = g_i w_ij / tau: the cotangent of this tile's similarities.
      gs = (g_blk / tau)[:, None] * w
      d_r = d_r + jnp.dot(gs, c_blk, preferred_element_type=tau.dtype)
      d_c = jnp.dot(gs.T, r_blk, preferred_element_type=tau.dtype)
      ws = ws + jnp.sum(w, axis=1)
      wx = wx + jnp.sum(w * jnp.where(valid, x, 0.0), axis=1)
      return (d_r, ws, wx), d_c

    zeros = jnp.zeros_like(shift_blk)
    init = (jnp.zeros_like(r_blk), zeros, zeros)
    (d_r, ws, wx), d_c = jax.lax.scan(col_step, init, (jnp.arange(c_blocks.shape[0]), c_blocks))
    return d_cols + d_c, (d_r, ws, wx)

  d_cols, (d_rows, ws, wx) = jax.lax.scan(
    row_block,
    jnp.zeros_like(c_blocks),
    (r_blocks, s_blocks, i_blocks, d_blocks, g_blocks, sel_blocks),
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
    None,  # row_ids: integers, no cotangent
  )


def _among(top_cols, j0, width):
  """[rows, width] bool: which of the tile's columns j0 ... j0 + width - 1 are among
  each row's `top_cols` [rows, k] (column indices; those of other tiles dropped)."""
  inside = (top_cols >= j0) & (top_cols < j0 + width)
  local = jnp.where(inside, top_cols - j0, width)  # `width` is out of range: dropped
  rows = jnp.arange(top_cols.shape[0])[:, None]
  return jnp.zeros((top_cols.shape[0], width), bool).at[rows, local].set(True, mode="drop")


_row_lse.defvjp(_row_lse_fwd, _row_lse_bwd)


def row_hard_logsumexp(rows, cols, shift, temperature, *, num_hard: int, block_size: int,
                       mask: str = "all", row_ids=None):  # fmt: skip
  """d_i = logsumexp over row i's `num_hard` largest valid (rows_i . cols_j - shift_i) / tau.

  The hard contrastive loss's denominator (Wang & Liu, Eq. 9) over tiles: the
  forward pass merges each tile into a running top-`num_hard` of every row (so the
  loss is exactly the dense one's) and keeps the selected columns' indices; the
  backward pass recomputes each tile and counts only those columns, so exactly k
  columns of a row receive gradient whatever the rounding of either program. Ties
  are broken by column position, the lower index kept, as `jax.lax.top_k` does.
  Memory O((M + K) x D + M x num_hard + block_size x (block_size + num_hard)): the
  indices, [M, num_hard] int32, are the backward pass's residual.

  Args: as `row_logsumexp`, and num_hard: k >= 1 (all valid columns when a row has
  fewer).

  Returns:
    d: [M], 0 for a row without a valid column.
  """
  if isinstance(num_hard, bool) or not isinstance(num_hard, int) or num_hard < 1:
    raise ValueError(f"num_hard must be an integer >= 1, got {num_hard!r}.")
  rows, cols, shift, tau, row_ids = _prepare(rows, cols, shift, temperature, block_size, mask,
                                             row_ids)  # fmt: skip
  num_hard = min(num_hard, cols.shape[0])
  return _row_hard_lse(rows, cols, shift, tau, row_ids, num_hard, block_size, mask)


def _row_top(r_blk, shift_blk, ids_blk, c_blocks, tile, tau, k, block):
  """(values, columns) [rows, k]: each row's k largest valid X over all column
  tiles, a running top-k merged tile by tile (-inf where a row has fewer than k
  valid columns). Ties keep the lower column, as `jax.lax.top_k` on the whole row:
  the running entries all precede the tile's and top_k keeps the earlier of equals."""

  def col_step(top, cargs):
    values, cols = top
    bj, c_blk = cargs
    x, valid = tile(r_blk, c_blk, shift_blk, ids_blk, tau, bj * block)
    merged = jnp.concatenate([values, jnp.where(valid, x, -jnp.inf)], axis=1)
    tile_cols = jnp.broadcast_to((bj * block + jnp.arange(block)).astype(jnp.int32), x.shape)
    values, at = jax.lax.top_k(merged, k)
    cols = jnp.take_along_axis(jnp.concatenate([cols, tile_cols], axis=1), at, axis=1)
    return (values, cols), None

  # Made *_like the inputs, to vary over a mesh axis as they do (`views_logsumexp`);
  # column -1 is none, and selects nothing in `_among`.
  init = (
    jnp.broadcast_to(jnp.full_like(shift_blk, -jnp.inf)[:, None], (r_blk.shape[0], k)),
    jnp.broadcast_to(jnp.full_like(ids_blk, -1)[:, None], (r_blk.shape[0], k)),
  )
  top, _ = jax.lax.scan(col_step, init, (jnp.arange(c_blocks.shape[0]), c_blocks))
  return top


def _hard_forward(rows, cols, shift, tau, row_ids, k, block, mask):
  """(d [M], selected [M, k]): the log-sum-exp of each row's top k, and their columns."""
  r_blocks, c_blocks, s_blocks, i_blocks, tile = _blocks(rows, cols, shift, row_ids, block, mask)

  def row_block(args):
    top, top_cols = _row_top(*args, c_blocks, tile, tau, k, block)
    m = top[:, 0]
    has = jnp.isfinite(m)
    safe = jnp.where(has, m, 0.0)
    d = jnp.where(has, safe + jnp.log(jnp.sum(jnp.exp(top - safe[:, None]), axis=1)), 0.0)
    return d, top_cols

  d, selected = jax.lax.map(row_block, (r_blocks, s_blocks, i_blocks))
  num_rows = rows.shape[0]
  return d.reshape(-1)[:num_rows], selected.reshape(-1, k)[:num_rows]


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _row_hard_lse(rows, cols, shift, tau, row_ids, k, block, mask):
  return _hard_forward(rows, cols, shift, tau, row_ids, k, block, mask)[0]


def _row_hard_lse_fwd(rows, cols, shift, tau, row_ids, k, block, mask):
  d, selected = _hard_forward(rows, cols, shift, tau, row_ids, k, block, mask)
  return d, (rows, cols, shift, tau, row_ids, d, selected)


def _row_hard_lse_bwd(k, block, mask, res, g):
  del k  # the selection is in the residuals
  *res, selected = res
  return _backward(block, mask, *res, g, selected=selected)


_row_hard_lse.defvjp(_row_hard_lse_fwd, _row_hard_lse_bwd)


VIEW_LAYOUTS = ("simclr", "cross_view")


def views_logsumexp(h1, h2, shift, temperature, *, block_size: int, mask: str, num_hard=None,
                    mesh=None, axis: str = "data", layout: str = "simclr"):  # fmt: skip
  """d for the 2N anchors concat(h1, h2) of a two-view batch, tiled.

  `row_logsumexp` (or `row_hard_logsumexp` with `num_hard`) with the columns
  `layout` names: "simclr", all 2N views (with `mask` "not_self_or_partner",
  SimCLR's 2N - 2 negatives); "cross_view", the other view's N (h1's rows against
  h2, then h2's against h1; with `mask` "not_self", the N - 1 that are not the
  positive). Given a `mesh` whose `axis` shards h1, h2 and shift's halves by rows
  (the trainer's data-parallel batch), each device computes the d of its own rows
  against all the columns (all-gathered: [2N, D], never [2N, 2N]), tile by tile,
  and the columns' cotangents are summed back to the devices holding them (the
  all-gather's transpose, a reduce-scatter). Without a mesh, XLA would run the
  whole tiled loop on every device.

  Args:
    h1, h2: [N, D] the views' (normalised) embeddings.
    shift: [2N] per-anchor offsets, in concat(h1, h2) order.
    temperature, block_size, mask, num_hard: as `row_logsumexp` /
      `row_hard_logsumexp`.
    mesh: None, or a `jax.sharding.Mesh` with `axis`; N must divide by its size.
    layout: one of `VIEW_LAYOUTS`.

  Returns:
    d: [2N] in concat(h1, h2) order.
  """
  if layout not in VIEW_LAYOUTS:
    raise ValueError(f"Unknown layout {layout!r}; valid: {', '.join(VIEW_LAYOUTS)}.")
  kernel = functools.partial(row_logsumexp, block_size=block_size, mask=mask)
  if num_hard is not None:
    kernel = functools.partial(row_hard_logsumexp, num_hard=num_hard, block_size=block_size,
                               mask=mask)  # fmt: skip
  n = h1.shape[0]

  def rows_against_columns(r1, r2, c1, c2, s1, s2, tau, ids):
    """(d of r1, d of r2): rows r1, r2 (global indices `ids`, or all rows when None)
    against the columns c1, c2 (all N of each view)."""
    if layout == "cross_view":
      return kernel(r1, c2, s1, tau, row_ids=ids), kernel(r2, c1, s2, tau, row_ids=ids)
    both = None if ids is None else jnp.concatenate([ids, ids + n])
    cols = jnp.concatenate([c1, c2])
    d = kernel(jnp.concatenate([r1, r2]), cols, jnp.concatenate([s1, s2]), tau, row_ids=both)
    return d[: r1.shape[0]], d[r1.shape[0] :]

  if mesh is None or mesh.shape[axis] == 1:
    return jnp.concatenate(rows_against_columns(h1, h2, h1, h2, shift[:n], shift[n:],
                                                temperature, None))  # fmt: skip
  if n % mesh.shape[axis]:
    raise ValueError(
      f"N = {n} views do not divide over the {mesh.shape[axis]} devices of {axis!r}."
    )

  def local(h1, h2, s1, s2, tau):
    n_local = h1.shape[0]
    ids = jax.lax.axis_index(axis) * n_local + jnp.arange(n_local)
    c1, c2 = (jax.lax.all_gather(h, axis, tiled=True) for h in (h1, h2))
    # tau is the same on every device; the kernel's cotangent for it is a
    # per-device partial sum. Typed as varying, autodiff sums it over the devices
    # (the transpose of pcast), as the all-gather's transpose does for the columns.
    tau = jax.lax.pcast(tau, (axis,), to="varying")
    return rows_against_columns(h1, h2, c1, c2, s1, s2, tau, ids)

  rows_spec = P(axis)
  d1, d2 = jax.shard_map(
    local,
    mesh=mesh,
    in_specs=(rows_spec, rows_spec, rows_spec, rows_spec, P()),
    out_specs=(rows_spec, rows_spec),
  )(h1, h2, shift[:n], shift[n:], jnp.asarray(temperature))
  return jnp.concatenate([d1, d2])
