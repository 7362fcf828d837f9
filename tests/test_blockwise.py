"""The blockwise (tiled) kernels against the dense ones and a NumPy reference.

The dense kernels are themselves checked against float64 NumPy and the papers'
closed forms (test_losses.py); here the blockwise ones must give the same losses
and gradients, with respect to both views and the temperature, to 1e-5 relative,
at 2N = 512 and 4096, for block sizes that divide 2N and that do not.
"""

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive import blockwise
from contrastive import checks
from contrastive import config as config_lib
from contrastive import losses
from contrastive import objective
from contrastive import recipes

TAUS = (0.01, 0.2, 1.0)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _views(n2, d=32, seed=0, noise=0.5):
  rng = np.random.default_rng(seed)
  z1 = rng.normal(size=(n2 // 2, d)).astype(np.float32)
  return z1, (z1 + noise * rng.normal(size=z1.shape)).astype(np.float32)


def _separated_views(n2, d=32, directions=12):
  """Views drawn from a few directions: similarities take few values, far apart."""
  rng = np.random.default_rng(4)
  base = rng.normal(size=(directions, d))
  base /= np.linalg.norm(base, axis=1, keepdims=True)
  sims = np.unique(np.round(base @ base.T, 9))
  assert np.min(np.diff(sims)) > 5e-4  # no near-ties for float32 rounding to flip
  pick = lambda: base[rng.integers(0, directions, size=n2 // 2)].astype(np.float32)  # noqa: E731
  return pick(), pick()


def _value_and_grads(fn):
  """jit(value_and_grad) of fn(z1, z2, tau) in all three, tau traced."""
  return jax.jit(jax.value_and_grad(fn, argnums=(0, 1, 2)))


def _dense_and_tiled(loss, block):
  """jit of (dense, tiled) `_value_and_grads` of `loss` as one program: one compile
  where two took 1.3 times as long (the dense kernel's and the tiled one's apart)."""
  dense, tiled = (jax.value_and_grad(loss(b), argnums=(0, 1, 2)) for b in (None, block))
  return jax.jit(lambda *args: (dense(*args), tiled(*args)))


def _assert_close(got, want, rtol=1e-5):
  (v_got, g_got), (v_want, g_want) = got, want
  np.testing.assert_allclose(v_got, v_want, rtol=rtol)
  for a, b, name in zip(g_got, g_want, ("z1", "z2", "tau"), strict=True):
    scale = np.max(np.abs(b))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, err_msg=name)


def _nt_xent(block_size):
  return lambda a, b, t: losses.nt_xent(a, b, temperature=t, block_size=block_size)


def _logsumexp(block_size):
  return lambda a, b, t: losses.generalized_contrastive_loss(
    a, b, distribution="logsumexp", weight=0.5, temperature=t, block_size=block_size
  )


def _max_error(got, want):
  """Largest error of value and of each gradient, relative to its largest entry."""
  (v_got, g_got), (v_want, g_want) = got, want
  errs = [abs(float(v_got) - float(v_want)) / abs(float(v_want))]
  for a, b in zip(g_got, g_want, strict=True):
    a, b = np.float64(a), np.float64(b)
    errs.append(np.max(np.abs(a - b)) / np.max(np.abs(b)))
  return np.asarray(errs)


def _macl(block_size, schedule="linear", alpha=0.5):
  return lambda a, b, t: losses.macl_nt_xent(
    a, b, temperature=t, alpha=alpha, schedule=schedule, block_size=block_size
  )


def _macl_exponential(block_size):
  return _macl(block_size, "exponential", 2.0)


def _hard(block_size, num_hard=100):
  return lambda a, b, t: losses.hard_nt_xent(
    a, b, temperature=t, num_hard=num_hard, block_size=block_size
  )


def _nt_xent_cross(block_size):
  return lambda a, b, t: losses.nt_xent(
    a, b, temperature=t, block_size=block_size, layout="cross_view"
  )


def _hard_cross(block_size):
  return lambda a, b, t: losses.hard_nt_xent(
    a, b, temperature=t, hard_fraction=0.3, block_size=block_size, layout="cross_view"
  )


def _macl_cross(block_size):
  return lambda a, b, t: losses.macl_nt_xent(
    a, b, temperature=t, alpha=0.5, block_size=block_size, layout="cross_view"
  )


def _dcl(block_size):
  return lambda a, b, t: losses.dcl(a, b, temperature=t, block_size=block_size)


def _dcl_cross(block_size):
  return lambda a, b, t: losses.dcl(a, b, temperature=t, block_size=block_size, layout="cross_view")


def _hard_fraction(block_size):
  return lambda a, b, t: losses.hard_nt_xent(
    a, b, temperature=t, hard_fraction=0.3, block_size=block_size
  )


_LOSSES = {
  "nt_xent": _nt_xent,
  "logsumexp": _logsumexp,
  "macl_linear": _macl,
  "macl_exponential": _macl_exponential,
  "hard": _hard,
  "nt_xent_cross_view": _nt_xent_cross,
}
# Cheaper variants at 2N = 512 only: DCL is NT-Xent's d_i without the softplus,
# hard_fraction differs from num_hard only in how k is computed, and the cross-view
# hard loss and MACL share their tiles with the cross-view NT-Xent.
_SMALL_ONLY = {
  "dcl": _dcl,
  "dcl_cross_view": _dcl_cross,
  "hard_fraction": _hard_fraction,
  "hard_cross_view": _hard_cross,
  "macl_cross_view": _macl_cross,
}


@pytest.mark.parametrize(
  "n2,block,loss",
  [(n2, block, loss) for n2, block in ((512, 128), (4096, 1000)) for loss in _LOSSES.values()]
  + [(512, 128, loss) for loss in _SMALL_ONLY.values()],
  ids=[f"{name}-{n2}" for n2 in (512, 4096) for name in _LOSSES]
  + [f"{name}-512" for name in _SMALL_ONLY],
)
def test_blockwise_equals_dense(n2, block, loss):
  z1, z2 = _views(n2)
  hard = loss in (_hard, _hard_fraction, _hard_cross)
  with jax.enable_x64(True):  # the same mathematics: equal to float64 rounding
    z1_64, z2_64 = np.float64(z1), np.float64(z2)
    both = _dense_and_tiled(loss, block)
    # (float64 top-k over 4096 columns is slow on this CPU: the hard loss's float64
    # check runs at 2N = 512, its float32 one at both sizes.)
    if not (hard and n2 > 512):
      want = {}
      for tau in TAUS:
        want[tau], tiled = both(z1_64, z2_64, tau)
        _assert_close(tiled, want[tau], rtol=1e-10)
  if hard:
    # Which negatives are the top k is decided by comparisons that float32 rounding
    # can flip where two similarities lie within an ulp, and the dense and tiled
    # kernels round the same dot products differently (different matmul shapes):
    # either choice is right to float32 precision, but the gradients then go to
    # different columns. So float32 is compared on views drawn from 12 directions,
    # whose distinct similarities lie far apart (and tie exactly, a lot), against
    # the dense float32 kernel directly.
    z1, z2 = _separated_views(n2)
    both = _dense_and_tiled(loss, block)
    for tau in TAUS:
      dense, tiled = both(z1, z2, tau)
      _assert_close(tiled, dense)
    return
  # In float32: within 1e-5 of the exact values, or no further from them than the
  # dense float32 kernel is. (Chen et al.'s logsumexp term includes each row's
  # self-similarity, so at tau = 0.01 its gradient is a difference of terms ~1/tau
  # that normalisation cancels: dense float32 itself is ~1e-4 off there.)
  both = _dense_and_tiled(loss, block)
  for tau in TAUS:
    dense, tiled = both(z1, z2, tau)
    err_tiled = _max_error(tiled, want[tau])
    err_dense = _max_error(dense, want[tau])
    assert np.all(err_tiled <= np.maximum(1e-5, 1.5 * err_dense)), (tau, err_tiled, err_dense)


def _reproducer_views(seeds, n=8, d=16):
  """Issue 25's reproducer, one seed a row: [S, n, d] twice (noisy second views)."""
  views = []
  for seed in seeds:
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=(n, d))
    views.append((z1, z1 + 1.5 * rng.normal(size=(n, d))))
  return np.stack([v[0] for v in views]), np.stack([v[1] for v in views])


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_tiled_hard_gradient_equals_dense_eager_and_jitted(x64):
  # Outside jit, the forward and backward passes are separately compiled programs
  # that may round the same similarity an ulp apart; a backward pass that re-selected
  # the top k by comparing against the forward's threshold dropped the entry at the
  # threshold (with k = 1, an anchor's whole negative gradient: errors up to 91%).
  # One tile covering all 2N = 16 columns and several (blocks of 5).
  with jax.enable_x64(x64):
    dtype = np.float64 if x64 else np.float32
    z1, z2 = (dtype(z) for z in _reproducer_views(range(10)))

    def grads(block):
      loss = lambda a, b: losses.hard_nt_xent(a, b, temperature=0.01, num_hard=1, block_size=block)
      return jax.vmap(jax.grad(loss, argnums=(0, 1)))  # the ten seeds at once

    want = jax.jit(grads(None))(z1, z2)
    for block in (16, 5):
      for how, fn in (("eager", grads(block)), ("jit", jax.jit(grads(block)))):
        for got, ref, name in zip(fn(z1, z2), want, ("z1", "z2"), strict=True):
          scale = np.max(np.abs(ref), axis=(1, 2), keepdims=True)
          np.testing.assert_array_less(
            np.abs(got - ref) / scale, 1e-10 if x64 else 1e-5, err_msg=(name, block, how)
          )


_EVERY_KERNEL = ("nt_xent", "logsumexp", "macl_linear", "hard", "dcl", "nt_xent_cross_view",
                 "hard_cross_view")  # fmt: skip


@pytest.mark.parametrize("name", _EVERY_KERNEL)
def test_every_tiled_kernel_equals_dense_eager_and_jitted(name):
  # Value and gradients (z1, z2, tau) at tau = 0.01 in float64, without jit as well
  # as with it, one tile covering all columns and several: both tiled kernels
  # (`row_logsumexp`, `row_hard_logsumexp`) under every loss and layout that tiles
  # (MACL's other schedule and hard_fraction tile as these do).
  loss = {**_LOSSES, **_SMALL_ONLY}[name]
  if loss is _hard:
    loss = functools.partial(_hard, num_hard=1)
  with jax.enable_x64(True):
    z1, z2 = (np.float64(z) for z in _views(16, d=8, seed=2, noise=1.0))
    want = _value_and_grads(loss(None))(z1, z2, 0.01)
    for block in (16, 5):
      fn = jax.value_and_grad(loss(block), argnums=(0, 1, 2))
      _assert_close(fn(z1, z2, 0.01), want, rtol=1e-10)
      _assert_close(jax.jit(fn)(z1, z2, 0.01), want, rtol=1e-10)


def _bank_inputs(n=12, m=50, d=8, seed=6, dtype=np.float64):
  rng = np.random.default_rng(seed)
  z1 = rng.normal(size=(n, d))
  z2 = z1 + 0.7 * rng.normal(size=(n, d))
  bank = rng.normal(size=(m, d))
  indices = rng.choice(m, size=n, replace=False).astype(np.int32)
  return dtype(z1), dtype(z2), dtype(bank), indices


def _bank_losses(block):
  return {
    "contrastive": lambda a, b, t, bank, idx: losses.bank_nt_xent(
      a, b, bank, idx, temperature=t, block_size=block
    ),
    "hard_5": lambda a, b, t, bank, idx: losses.hard_bank_nt_xent(
      a, b, bank, idx, temperature=t, num_hard=5, block_size=block
    ),
    "hard_fraction": lambda a, b, t, bank, idx: losses.hard_bank_nt_xent(
      a, b, bank, idx, temperature=t, hard_fraction=0.3, block_size=block
    ),
  }


@pytest.mark.heavy(seconds=20)
def test_tiled_memory_bank_equals_dense():
  # The NPID layout over tiles: the own-instance exclusion an index comparison in
  # each tile. Values and gradients (views and tau), float64, blocks smaller than the
  # bank and one covering it, eager and jitted; float32 on views of few directions
  # (the hard loss's top k, as in test_blockwise_equals_dense).
  with jax.enable_x64(True):
    z1, z2, bank, idx = _bank_inputs()
    for name, dense in _bank_losses(None).items():
      want_fn = jax.jit(jax.value_and_grad(dense, argnums=(0, 1, 2)))
      for block in (7, 64):
        tiled = _bank_losses(block)[name]
        fn = jax.value_and_grad(tiled, argnums=(0, 1, 2))
        for tau in (0.01, 0.2):
          want = want_fn(z1, z2, tau, bank, idx)
          _assert_close(jax.jit(fn)(z1, z2, tau, bank, idx), want, rtol=1e-10)
        _assert_close(fn(z1, z2, 0.2, bank, idx), want_fn(z1, z2, 0.2, bank, idx), rtol=1e-10)
  rng = np.random.default_rng(8)
  base = rng.normal(size=(12, 8))
  base /= np.linalg.norm(base, axis=1, keepdims=True)
  pick = lambda n: np.float32(base[rng.integers(0, 12, size=n)])  # noqa: E731
  z1, z2, bank = pick(16), pick(16), pick(60)
  idx = rng.choice(60, size=16, replace=False).astype(np.int32)
  for name, dense in _bank_losses(None).items():
    want = jax.jit(jax.value_and_grad(dense, argnums=(0, 1, 2)))(z1, z2, 0.2, bank, idx)
    got = jax.jit(jax.value_and_grad(_bank_losses(16)[name], argnums=(0, 1, 2)))(
      z1, z2, 0.2, bank, idx
    )
    _assert_close(got, want)


@pytest.mark.parametrize("name", ["contrastive", "hard_contrastive"])
def test_objective_tiles_the_memory_bank_with_its_statistics(name):
  cfg = recipes.quickstart().loss
  cfg.name, cfg.layout, cfg.num_hard = name, "memory_bank", 20
  z1, z2, bank, idx = (jnp.asarray(a) for a in _bank_inputs(n=16, m=90, dtype=np.float32))
  kwargs = dict(indices=idx, bank=bank, key=None)
  dense_loss, dense_stats = objective.objective(cfg, z1, z2, **kwargs)
  cfg.block_size = 32
  loss, stats = jax.jit(lambda a, b: objective.objective(cfg, a, b, **kwargs))(z1, z2)
  np.testing.assert_allclose(loss, dense_loss, rtol=1e-6)
  for key in stats:  # the closed-form mean negative similarity too
    np.testing.assert_allclose(stats[key], dense_stats[key], rtol=1e-5, atol=1e-6, err_msg=key)
  assert "neg_sim" in stats and "penalty_entropy" not in stats


def _reference_row_lse(rows, cols, shift, tau, mask):
  """float64 NumPy: the full matrix, masked, log-sum-exp per row."""
  rows, cols = np.float64(rows), np.float64(cols)
  x = (rows @ cols.T - np.float64(shift)[:, None]) / tau
  m, k = x.shape
  i, j = np.arange(m)[:, None], np.arange(k)[None, :]
  valid = np.ones_like(x, bool)
  if mask != "all":
    valid &= i != j
  if mask == "not_self_or_partner":
    valid &= j != (i + m // 2) % m
  x = np.where(valid, x, -np.inf)
  top = np.max(x, axis=1, keepdims=True)
  return (top + np.log(np.sum(np.exp(x - top), axis=1, keepdims=True)))[:, 0]


@pytest.mark.parametrize("mask", blockwise.MASKS)
def test_row_logsumexp_matches_numpy(mask):
  rng = np.random.default_rng(3)
  rows = rng.normal(size=(70, 8)).astype(np.float32) / 3
  cols = rows if mask != "all" else rng.normal(size=(45, 8)).astype(np.float32) / 3
  shift = rng.uniform(-1, 1, 70).astype(np.float32)
  for tau in TAUS:
    got = blockwise.row_logsumexp(rows, cols, shift, tau, block_size=16, mask=mask)
    want = _reference_row_lse(rows, cols, shift, tau, mask)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 / tau)


def test_float64_inputs_stay_float64():
  with jax.enable_x64(True):
    z1, z2 = (np.float64(z) for z in _views(64))
    dense, tiled = _value_and_grads(_nt_xent(None)), _value_and_grads(_nt_xent(24))
    got = tiled(z1, z2, 0.1)
    assert got[0].dtype == jnp.float64
    _assert_close(got, dense(z1, z2, 0.1), rtol=1e-12)


@pytest.mark.parametrize("positive_at", [1.0, -1.0])
def test_finite_at_tau_001_with_extreme_similarities_in_bfloat16(positive_at):
  # Views along +-e0, +-e1: every similarity is exactly +1, -1 or 0.
  e = np.eye(2, dtype=np.float32)
  z1 = jnp.asarray(np.stack([e[0], -e[0], e[1], -e[1]]), jnp.bfloat16)
  z2 = z1 if positive_at > 0 else -z1
  for loss in (_nt_xent(3), _logsumexp(3), _macl(3), _hard(3, 2)):
    value, grads = _value_and_grads(loss)(z1, z2, 0.01)
    assert value.dtype == jnp.float32
    assert np.isfinite(value) and all(np.all(np.isfinite(np.float32(g))) for g in grads)
  dense = _value_and_grads(_nt_xent(None))(z1, z2, 0.01)
  _assert_close(_value_and_grads(_nt_xent(3))(z1, z2, 0.01), dense)


def test_hard_loss_breaks_ties_by_position_as_top_k():
  # Collapsed and duplicated embeddings: whole rows of equal similarities, so which
  # of the tied negatives count decides the gradient. The dense kernel keeps the
  # lower indices (lax.top_k); the tiled one must keep the same ones across tiles.
  rng = np.random.default_rng(5)
  base = rng.normal(size=(3, 8)).astype(np.float32)
  z1 = base[rng.integers(0, 3, size=20)]
  z2 = base[rng.integers(0, 3, size=20)]
  for k, block in ((1, 16), (7, 5), (19, 40), (38, 16), (50, 5)):  # 38: every negative
    dense, tiled = _dense_and_tiled(functools.partial(_hard, num_hard=k), block)(z1, z2, 0.2)
    _assert_close(tiled, dense)
  # All views equal: every negative ties with every other and with the positive.
  same = np.ones((10, 4), np.float32)
  dense, tiled = _dense_and_tiled(functools.partial(_hard, num_hard=3), 7)(same, same, 0.5)
  _assert_close(tiled, dense)


def test_row_hard_logsumexp_matches_numpy():
  rng = np.random.default_rng(4)
  rows = rng.normal(size=(37, 8)).astype(np.float32) / 3
  cols = rng.normal(size=(53, 8)).astype(np.float32) / 3
  shift = rng.uniform(-1, 1, 37).astype(np.float32)
  x = (np.float64(rows) @ np.float64(cols).T - np.float64(shift)[:, None]) / 0.1
  for k in (1, 10, 53, 80):
    top = np.sort(x, axis=1)[:, ::-1][:, :k]
    want = top[:, :1] + np.log(np.sum(np.exp(top - top[:, :1]), axis=1, keepdims=True))
    got = blockwise.row_hard_logsumexp(rows, cols, shift, 0.1, num_hard=k, block_size=16)
    np.testing.assert_allclose(got, want[:, 0], rtol=1e-5, atol=1e-5 / 0.1)  # logits are s / tau


def test_vmap_over_temperatures_equals_each_temperature():
  z1, z2 = _views(96)
  taus = jnp.asarray(TAUS)
  tiled = jax.vmap(jax.value_and_grad(_nt_xent(40), argnums=(0, 1, 2)), in_axes=(None, None, 0))
  values, (g1, g2, gt) = jax.jit(tiled)(z1, z2, taus)
  dense = _value_and_grads(_nt_xent(None))
  for i, tau in enumerate(TAUS):
    _assert_close((values[i], (g1[i], g2[i], gt[i])), dense(z1, z2, tau))


def test_one_pair_has_no_negatives_and_zero_loss():
  z1, z2 = _views(2)
  value, grads = _value_and_grads(_nt_xent(4))(z1, z2, 0.2)
  assert value == 0 and all(np.all(g == 0) for g in grads)


@pytest.mark.parametrize(
  "kwargs,message",
  [
    (dict(block_size=0), "block_size must be a positive integer"),
    (dict(block_size=8, mask="diagonal"), "Unknown mask 'diagonal'"),
  ],
)
def test_bad_arguments_are_rejected(kwargs, message):
  rows = jnp.ones((6, 4))
  with pytest.raises(ValueError, match=message):
    blockwise.row_logsumexp(rows, rows, jnp.zeros(6), 0.2, **kwargs)


@pytest.mark.parametrize(
  "name,layout",
  [("contrastive", "simclr"), ("hard_contrastive", "simclr"), ("macl", "simclr"),
   ("generalized", "simclr"), ("contrastive", "cross_view"), ("dcl", "simclr"),
   ("dcl", "cross_view")],
)  # fmt: skip
def test_objective_blockwise_equals_dense_with_its_statistics(name, layout):
  cfg = recipes.quickstart().loss
  cfg.name, cfg.layout = name, layout
  z1, z2 = (jnp.asarray(z) for z in _views(64))
  dense_loss, dense_stats = objective.objective(cfg, z1, z2, indices=None, bank=None, key=None)
  cfg.block_size = 24
  loss, stats = jax.jit(
    lambda a, b: objective.objective(cfg, a, b, indices=None, bank=None, key=None)
  )(z1, z2)
  np.testing.assert_allclose(loss, dense_loss, rtol=1e-6)
  for key in stats:  # the closed-form mean negative similarity too
    np.testing.assert_allclose(stats[key], dense_stats[key], rtol=1e-5, atol=1e-6, err_msg=key)
  assert "neg_sim" in stats and "penalty_entropy" not in stats


_TILED = "loss.block_size tiles contrastive, hard_contrastive, macl, dcl, generalized "


@pytest.mark.parametrize(
  "overrides,message",
  [
    ("loss.block_size=0", "loss.block_size must be a positive integer"),
    ("loss.block_size=64,loss.name=hard_simple", _TILED),
    ("loss.block_size=64,loss.layout=memory_bank,loss.name=macl", _TILED),
    ("loss.name=generalized,loss.layout=memory_bank",
     "loss.name='generalized' does not take loss.layout='memory_bank'"),
  ],
)  # fmt: skip
def test_config_check_names_what_block_size_supports(overrides, message):
  c = config_lib.apply(recipes.quickstart(), config_lib.parse(overrides))
  with pytest.raises(config_lib.ConfigError, match=message):
    checks.check(c)


@pytest.mark.heavy(seconds=25)
def test_over_a_mesh_each_device_tiles_its_own_rows_against_all_columns(tmp_path):
  out = tmp_path / "mesh.json"
  proc = subprocess.run(
    [sys.executable, "tests/mesh_parity.py", str(out)],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads(out.read_text())
  assert sorted(results) == ["bank_hard", "hard", "logsumexp", "macl", "nt_xent",
                             "nt_xent_cross_view"]  # fmt: skip
  for name, r in results.items():
    # 2N = 96 anchors over 4 devices: 24 rows each against all 96 columns; the
    # cross-view layout: 12 rows of each view against the other view's 48; the
    # memory bank: 24 anchors (both views of 12 instances) against all 70 entries.
    want = {"nt_xent_cross_view": [[12, 48], [12, 48]], "bank_hard": [[24, 70]]}.get(
      name, [[24, 96]]
    )
    assert r["kernel_shapes"] == want, (name, r["kernel_shapes"])
    assert r["max_error"] < 1e-5, (name, r["max_error"])
