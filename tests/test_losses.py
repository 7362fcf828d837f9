"""Loss kernels against float64 NumPy references and the papers' closed forms.

Every kernel is called under `jax.jit`, with the temperature a traced argument
(as in a vmapped temperature analysis). JAX computes in float32 on float32 inputs
and the references in float64 on the same values, so the tolerance scales with
the logits' size: atol = 2e-6 * (1 + 1/tau), a few float32 ulps of s/tau.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from contrastive import config as config_lib
from contrastive import losses
from contrastive import numerics
from contrastive import objective
from contrastive import pairs
from contrastive import temperature as temperature_lib
from tests import reference

TAUS = (0.01, 0.07, 0.2, 1.0, 10.0)


def _atol(tau):
  return 2e-6 * (1 + 1 / tau)


def _similarities(seed, n=12, k=20, masked=True):
  """Random float32 similarities in [-1, 1] and a mask with >= 1 negative per row."""
  rng = np.random.default_rng(seed)
  pos = rng.uniform(-1, 1, n).astype(np.float32)
  neg = rng.uniform(-1, 1, (n, k)).astype(np.float32)
  mask = rng.random((n, k)) < 0.7 if masked else np.ones((n, k), bool)
  mask[np.arange(n), rng.integers(0, k, n)] = True
  return pos, neg, mask


def _jit(fn, **static):
  """`fn` under jit, with `static` keyword arguments bound and the rest traced."""
  return jax.jit(functools.partial(fn, **static))


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("masked", [False, True])
def test_contrastive_loss_matches_reference(tau, masked):
  pos, neg, mask = _similarities(0, masked=masked)
  got = _jit(losses.contrastive_loss)(pos, neg, temperature=tau, neg_mask=mask)
  np.testing.assert_allclose(
    got, reference.contrastive(pos, neg, tau, mask), rtol=1e-6, atol=_atol(tau)
  )


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("masked", [False, True])
def test_dcl_matches_reference_and_is_the_log_odds_of_infonce(tau, masked):
  pos, neg, mask = _similarities(21, masked=masked)
  got = _jit(losses.dcl_loss)(pos, neg, temperature=tau, neg_mask=mask)
  np.testing.assert_allclose(got, reference.dcl(pos, neg, tau, mask), rtol=1e-6, atol=_atol(tau))
  # InfoNCE = softplus(DCL): the positive back in the denominator.
  infonce = _jit(losses.contrastive_loss)(pos, neg, temperature=tau, neg_mask=mask)
  np.testing.assert_allclose(jax.nn.softplus(got), infonce, rtol=1e-6, atol=_atol(tau))


def test_dcl_gradient_on_the_positive_is_minus_one_over_tau():
  # Decoupled: the positive's weight no longer shrinks as the positive wins.
  pos, neg, mask = _similarities(22)
  fn = lambda p: jnp.sum(losses.dcl_loss(p, neg, temperature=0.2, neg_mask=mask))
  np.testing.assert_allclose(jax.jit(jax.grad(fn))(pos), -1 / 0.2, rtol=1e-6)


@pytest.mark.parametrize("tau", TAUS)
def test_contrastive_gradients_equal_eq4(tau):
  pos, neg, mask = _similarities(1)
  fn = lambda p, n: jnp.sum(losses.contrastive_loss(p, n, temperature=tau, neg_mask=mask))
  g_pos, g_neg = jax.jit(jax.grad(fn, argnums=(0, 1)))(pos, neg)
  ref_pos, ref_neg = reference.contrastive_grads(pos, neg, tau, mask)
  # Gradients are O(1/tau); their float32 error is a few ulps of that scale.
  np.testing.assert_allclose(g_pos, ref_pos, rtol=1e-5, atol=1e-6 / tau)
  np.testing.assert_allclose(g_neg, ref_neg, rtol=1e-5, atol=1e-6 / tau)
  assert np.all(g_neg[~mask] == 0)
  # Sum over negatives of |dL/ds_ij| equals |dL/ds_ii| (Eq. 4).
  np.testing.assert_allclose(np.abs(g_neg).sum(axis=1), np.abs(g_pos), rtol=1e-5, atol=1e-6 / tau)


@pytest.mark.parametrize("tau", TAUS)
def test_relative_penalty_equals_eq5(tau):
  pos, neg, mask = _similarities(2)
  got = _jit(losses.relative_penalty)(pos, neg, temperature=tau, neg_mask=mask)
  np.testing.assert_allclose(got, reference.relative_penalty(neg, tau, mask), atol=2e-6)
  np.testing.assert_allclose(np.sum(got, axis=1), 1.0, atol=2e-6)
  assert np.all(np.asarray(got)[~mask] == 0)


@pytest.mark.parametrize("tau", (0.2, 1.0))
def test_relative_penalty_is_the_gradient_ratio_at_the_true_positive(tau):
  # Where nothing underflows, |dL/ds_ij| / |dL/ds_ii| at the real s_ii is the same.
  pos, neg, mask = _similarities(3)
  fn = lambda p, n: jnp.sum(losses.contrastive_loss(p, n, temperature=tau, neg_mask=mask))
  g_pos, g_neg = jax.jit(jax.grad(fn, argnums=(0, 1)))(pos, neg)
  ratio = np.abs(g_neg) / np.abs(g_pos)[:, None]
  got = losses.relative_penalty(pos, neg, temperature=tau, neg_mask=mask)
  np.testing.assert_allclose(got, ratio, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("num_hard", [1, 5, 13])
def test_hard_contrastive_matches_reference(tau, num_hard):
  pos, neg, mask = _similarities(4)
  got = _jit(losses.hard_contrastive_loss, num_hard=num_hard)(
    pos, neg, temperature=tau, neg_mask=mask
  )
  want = reference.hard_contrastive(pos, neg, tau, num_hard, mask)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=_atol(tau))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, np.float64])
def test_top_k_mask_is_top_k_exactly(dtype):
  """The hard losses' selection: the set jax.lax.top_k picks (ties by position),
  exactly k per row, with ties, -inf, signed zeros and every k."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(7, 37))
  rows = [x[0], np.round(x[1] * 2) / 2, np.zeros(37), np.where(x[3] > 0.5, -np.inf, x[3]),
          np.full(37, -np.inf), np.where(x[5] > 0, 0.0, -0.0), -np.abs(x[6]) * 1e-30]  # fmt: skip
  x = np.stack(rows)
  with jax.enable_x64(dtype == np.float64):
    xd = jnp.asarray(x, dtype)
    for k in (1, 2, 10, 36, 37):
      _, idx = jax.lax.top_k(xd.astype(jnp.float32) if dtype == jnp.bfloat16 else xd, k)
      expected = np.zeros(x.shape, bool)
      np.put_along_axis(expected, np.asarray(idx), True, axis=-1)
      mask = np.asarray(numerics.top_k_mask(xd, k))
      np.testing.assert_array_equal(mask.sum(-1), k)
      # the kept values are top_k's (which of two equal values is kept may differ for
      # +0 and -0, which compare equal); with no such pair the sets are the same
      kept = np.sort(np.where(mask, x, np.nan), -1)[:, :k]
      np.testing.assert_array_equal(kept, np.sort(np.where(expected, x, np.nan), -1)[:, :k])
      np.testing.assert_array_equal(mask[:5], expected[:5])


@pytest.mark.parametrize("dtype", [jnp.float32, np.float64])
def test_sort_columns_is_the_sort_with_its_gradient(dtype):
  """The sliced Wasserstein term's sort (a sorting network on the CPU): the values of
  jnp.sort along axis 0 exactly, at lengths that are powers of two or not, with ties,
  +-inf and signed zeros; the gradient of a loss on them equals the sort's where a
  column has no ties."""
  rng = np.random.default_rng(1)
  with jax.enable_x64(dtype == np.float64):
    for n in (1, 6, 37):  # 6, 37: padded to 8, 64; 1: no stage
      x = rng.normal(size=(n, 5))
      x[:, 1] = np.round(x[:, 1])  # ties
      x[: n // 2, 2] = np.inf
      x[n // 3 :, 3] = -np.inf
      x[:, 4] = np.where(x[:, 4] > 0, 0.0, -0.0)
      xd = jnp.asarray(x, dtype)
      got, want = jax.jit(numerics.sort_columns)(xd), jnp.sort(xd, axis=0)
      np.testing.assert_array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64))
      assert got.dtype == xd.dtype and got.shape == xd.shape
      smooth = jnp.asarray(rng.permutation(3 * n).reshape(n, 3) / 4 - n / 2, dtype)  # no ties
      target = jnp.asarray(rng.normal(size=(n, 3)), dtype)
      grads = [
        jax.jit(jax.grad(lambda v, f=f, t=target: jnp.sum((f(v) - t) ** 2).astype(jnp.float32)))(
          smooth
        )
        for f in (numerics.sort_columns, lambda v: jnp.sort(v, axis=0))
      ]
      np.testing.assert_array_equal(np.asarray(grads[0]), np.asarray(grads[1]))


def test_hard_contrastive_with_all_negatives_is_contrastive():
  pos, neg, mask = _similarities(5)
  for tau in TAUS:
    hard = losses.hard_contrastive_loss(
      pos, neg, temperature=tau, num_hard=neg.shape[1], neg_mask=mask
    )
    plain = losses.contrastive_loss(pos, neg, temperature=tau, neg_mask=mask)
    np.testing.assert_allclose(hard, plain, rtol=1e-6, atol=1e-6)


def test_hard_fraction_resolves_like_the_paper():
  assert losses.resolve_num_hard(50_000, hard_fraction=0.0819) == 4095
  assert losses.resolve_num_hard(100, hard_fraction=0.0819) == 9  # ceil(8.19)
  assert losses.resolve_num_hard(100, num_hard=4095) == 100
  pos, neg, mask = _similarities(6)
  by_fraction = losses.hard_contrastive_loss(
    pos, neg, temperature=0.3, hard_fraction=0.25, neg_mask=mask
  )
  by_count = losses.hard_contrastive_loss(pos, neg, temperature=0.3, num_hard=5, neg_mask=mask)
  np.testing.assert_array_equal(by_fraction, by_count)


@pytest.mark.parametrize(
  "kwargs",
  [
    {},
    {"num_hard": 3, "hard_fraction": 0.1},
    {"num_hard": 0},
    {"hard_fraction": 1.5},
    {"num_hard": 2.5},
  ],
)
def test_hard_selection_rejects_bad_arguments(kwargs):
  pos, neg, _ = _similarities(7)
  with pytest.raises(ValueError, match="num_hard|hard_fraction"):
    losses.hard_contrastive_loss(pos, neg, temperature=0.5, **kwargs)


@pytest.mark.parametrize("masked", [False, True])
def test_simple_and_hard_simple_match_reference(masked):
  pos, neg, mask = _similarities(8, masked=masked)
  np.testing.assert_allclose(
    _jit(losses.simple_loss)(pos, neg, neg_mask=mask),
    reference.simple(pos, neg, mask),
    rtol=1e-6,
    atol=1e-6,
  )
  np.testing.assert_allclose(
    _jit(losses.simple_loss)(pos, neg, weight=0.3, neg_mask=mask),
    reference.simple(pos, neg, mask, weight=0.3),
    rtol=1e-6,
    atol=1e-6,
  )
  for num_hard in (1, 4, 20):
    np.testing.assert_allclose(
      _jit(losses.hard_simple_loss, num_hard=num_hard)(pos, neg, neg_mask=mask),
      reference.hard_simple(pos, neg, num_hard, mask),
      rtol=1e-6,
      atol=1e-6,
    )


def test_gradient_turns_toward_simple_loss_as_tau_grows():
  pos, neg, mask = _similarities(9)
  simple_grad = jax.grad(
    lambda p, n: jnp.sum(losses.simple_loss(p, n, neg_mask=mask)), argnums=(0, 1)
  )(pos, neg)
  simple_flat = np.concatenate([np.ravel(g) for g in simple_grad])
  cosines = []
  for tau in (0.1, 1.0, 10.0, 100.0, 1000.0):
    grad = jax.grad(
      lambda p, n, tau=tau: jnp.sum(losses.contrastive_loss(p, n, temperature=tau, neg_mask=mask)),
      argnums=(0, 1),
    )(pos, neg)
    flat = np.concatenate([np.ravel(g) for g in grad])
    cosines.append(flat @ simple_flat / np.linalg.norm(flat) / np.linalg.norm(simple_flat))
  assert cosines[-1] > 0.999, cosines
  assert np.all(np.diff(cosines) > 0), cosines


def test_loss_approaches_triplet_form_as_tau_falls():
  pos, neg, mask = _similarities(10)
  triplet = np.maximum(np.max(np.where(mask, neg, -np.inf), axis=1) - pos, 0.0)
  gaps = []
  for tau in (1.0, 0.1, 0.01, 0.001):
    scaled = tau * np.asarray(losses.contrastive_loss(pos, neg, temperature=tau, neg_mask=mask))
    gap = scaled - triplet
    # 0 <= log(1 + sum_k e^{x_k}) - max(0, max_k x_k) <= log(K + 1), times tau.
    assert np.all(gap >= -1e-6) and np.all(gap <= tau * np.log(neg.shape[1] + 1) + 1e-6)
    gaps.append(np.max(gap))
  assert gaps[-1] < 5e-3 and np.all(np.diff(gaps) < 0), gaps


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("schedule,alpha", [("linear", 0.5), ("exponential", 2.0)])
def test_macl_matches_official_formula(tau, schedule, alpha):
  pos, neg, mask = _similarities(11)
  got = _jit(losses.macl_loss, schedule=schedule)(
    pos, neg, temperature=tau, alpha=alpha, alignment_ref=0.1, neg_mask=mask
  )
  want = reference.macl(pos, neg, tau, alpha, 0.1, schedule, mask)
  adapted = reference.macl_tau(pos, tau, alpha, 0.1, schedule)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=_atol(adapted))


@pytest.mark.parametrize("schedule,alpha", [("linear", 0.5), ("exponential", 2.0)])
def test_macl_gradients_are_the_relative_penalty(schedule, alpha):
  pos, neg, mask = _similarities(12)
  tau0 = 0.2
  fn = lambda p, n: jnp.sum(
    losses.macl_loss(p, n, temperature=tau0, alpha=alpha, schedule=schedule, neg_mask=mask)
  )
  g_pos, g_neg = jax.jit(jax.grad(fn, argnums=(0, 1)))(pos, neg)
  tau = reference.macl_tau(pos, tau0, alpha, 0.0, schedule)
  # If any gradient flowed through A = mean(pos), g_pos would differ from -1/tau.
  np.testing.assert_allclose(g_pos, -1 / tau, rtol=1e-5)
  np.testing.assert_allclose(
    g_neg, reference.relative_penalty(neg, tau, mask) / tau, rtol=1e-5, atol=1e-7
  )


def test_macl_anchor_loss_does_not_depend_on_other_positives_through_a():
  pos, neg, _ = _similarities(13)
  jac = jax.jacrev(lambda p: losses.macl_loss(p, neg, temperature=0.1, alpha=0.5))(pos)
  np.testing.assert_array_equal(jac - np.diag(np.diag(jac)), 0.0)


def test_macl_official_cross_view_layout():
  rng = np.random.default_rng(14)
  z1, z2 = rng.normal(size=(2, 16, 8)).astype(np.float32)
  pos, neg, mask = pairs.cross_view_pairs(z1, z2, symmetric=False)
  got = jnp.mean(losses.macl_loss(pos, neg, temperature=0.1, alpha=0.5, neg_mask=mask))
  fx, gx = reference.normalize(z1), reference.normalize(z2)
  sim = fx @ gx.T
  want = np.mean(reference.macl(np.diag(sim), sim, 0.1, 0.5, mask=~np.eye(16, dtype=bool)))
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_macl_holds_its_temperature_at_the_floor_where_the_schedule_goes_below():
  # alpha = 1 with A_0 = 0.3 (accepted by the official code and lightly): at A = -0.8
  # the linear schedule gives 0.1 * (1 + (-0.8 - 0.3)) = -0.01; tau is held at
  # tau_0 / 10 = 0.01.
  rng = np.random.default_rng(17)
  pos = np.full(8, -0.8, np.float32)
  neg = rng.uniform(-1, 1, size=(8, 6)).astype(np.float32)
  kw = dict(temperature=0.1, alpha=1.0, alignment_ref=0.3)
  raw = losses.macl_temperature(jnp.asarray(pos), min_ratio=None, **kw)
  np.testing.assert_allclose(raw, -0.01, atol=1e-7)
  tau = losses.macl_temperature(jnp.asarray(pos), **kw)
  assert float(tau) == pytest.approx(losses.MACL_MIN_TEMPERATURE_RATIO * 0.1) == 0.01
  got = losses.macl_loss(pos, neg, **kw)
  logits = np.concatenate([pos[:, None], neg], axis=1).astype(np.float64) / 0.01
  log_p = logits[:, 0] - np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1))
  log_p -= logits.max(1)
  want = -log_p / -np.expm1(log_p)  # -log P / (1 - P), the official form
  np.testing.assert_allclose(got, want, rtol=1e-4)
  above = np.full(8, 0.5, np.float32)  # 0.1 * (1 + 0.2): the floor does not bind
  assert float(losses.macl_temperature(jnp.asarray(above), **kw)) == pytest.approx(0.12)
  z = rng.normal(size=(8, 4)).astype(np.float32)
  cfg = config_lib.base().loss
  cfg.update(name="macl", macl_alpha=1.0, macl_alignment_ref=0.3, temperature=0.1)
  stats = objective.diagnostics(cfg, z, -z, indices=None, bank=None)  # A = -1
  assert float(stats["temperature_floored"]) == 1.0
  assert float(stats["temperature"]) == pytest.approx(0.01)
  stats = objective.diagnostics(cfg, z, z, indices=None, bank=None)  # A = 1
  assert float(stats["temperature_floored"]) == 0.0


def test_macl_rejects_bad_schedules():
  pos, neg, _ = _similarities(15)
  with pytest.raises(ValueError, match="linear, exponential"):
    losses.macl_loss(pos, neg, temperature=0.1, alpha=0.5, schedule="cosine")
  with pytest.raises(ValueError, match="alpha"):
    losses.macl_loss(pos, neg, temperature=0.1, alpha=0.0, schedule="exponential")


@pytest.mark.parametrize("tau", TAUS)
def test_nt_xent_matches_optax_and_reference(tau):
  rng = np.random.default_rng(16)
  z1, z2 = rng.normal(size=(2, 10, 6)).astype(np.float32)
  got = _jit(losses.nt_xent)(z1, z2, temperature=tau)
  labels = np.concatenate([np.arange(10), np.arange(10)])
  want_optax = optax.ntxent(jnp.concatenate([z1, z2]), labels, tau)
  np.testing.assert_allclose(got, want_optax, rtol=1e-5, atol=_atol(tau))
  np.testing.assert_allclose(got, reference.nt_xent(z1, z2, tau), rtol=1e-5, atol=_atol(tau))


@pytest.mark.parametrize("tau", TAUS)
def test_nt_xent_closed_form_on_identical_orthogonal_views(tau):
  n = 6
  z = np.eye(8, dtype=np.float32)[:n] * 3.0  # norm 3: normalised inside
  # Positive at 1, 2n - 2 negatives at 0: log(1 + (2n - 2) exp(-1/tau)).
  want = np.log1p((2 * n - 2) * np.exp(-1 / tau))
  np.testing.assert_allclose(
    _jit(losses.nt_xent)(z, z, temperature=tau), want, rtol=1e-6, atol=1e-7
  )


def test_pairs_layouts_count_negatives():
  rng = np.random.default_rng(17)
  z1, z2 = rng.normal(size=(2, 5, 4)).astype(np.float32)
  _, _, m = pairs.simclr_pairs(z1, z2)
  np.testing.assert_array_equal(np.sum(m, axis=1), 8)  # 2N - 2
  _, _, m = pairs.cross_view_pairs(z1, z2)
  assert m.shape == (10, 5)
  np.testing.assert_array_equal(np.sum(m, axis=1), 4)  # N - 1
  bank = rng.normal(size=(30, 4)).astype(np.float32)
  idx = np.array([3, 0, 29, 7, 11])
  pos, neg, m = pairs.memory_bank_pairs(z1, z2, bank, idx)
  np.testing.assert_array_equal(np.sum(m, axis=1), 29)  # M - 1
  assert not np.any(m[np.arange(5), idx])
  np.testing.assert_allclose(neg, reference.normalize(z1) @ reference.normalize(bank).T, atol=1e-6)


def test_hard_loss_on_memory_bank_matches_reference():
  rng = np.random.default_rng(18)
  z, z2 = rng.normal(size=(2, 8, 16)).astype(np.float32)
  bank = rng.normal(size=(200, 16)).astype(np.float32)
  idx = rng.choice(200, 8, replace=False)
  pos, neg, mask = pairs.memory_bank_pairs(z, z2, bank, idx)
  got = losses.hard_contrastive_loss(pos, neg, temperature=0.07, num_hard=17, neg_mask=mask)
  ref_pos = np.sum(reference.normalize(z) * reference.normalize(z2), axis=1)
  ref_neg = reference.normalize(z) @ reference.normalize(bank).T
  want = reference.hard_contrastive(ref_pos, ref_neg, 0.07, 17, np.asarray(mask))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=_atol(0.07))


def _swd_inputs(seed, n=12, d=6):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(2, n, d)).astype(np.float32)


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("normalize", [True, False])
def test_generalized_logsumexp_matches_official(tau, normalize):
  z1, z2 = _swd_inputs(19)
  if not normalize:
    z1, z2 = z1 / 3, z2 / 3  # keep |H_i . H_j| / tau representable at tau = 0.01
  got = _jit(losses.generalized_contrastive_loss, distribution="logsumexp", normalize=normalize)(
    z1, z2, weight=0.7, temperature=tau
  )
  want = reference.generalized(z1, z2, "logsumexp", 0.7, tau, normalize)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=_atol(tau))


@pytest.mark.parametrize("distribution", ["swd_gaussian", "swd_hypersphere", "swd_hypercube"])
@pytest.mark.parametrize("normalize", [True, False])
def test_generalized_swd_matches_official(distribution, normalize):
  z1, z2 = _swd_inputs(20)
  key = jax.random.key(3)
  got = _jit(losses.generalized_contrastive_loss, distribution=distribution, normalize=normalize)(
    z1, z2, weight=5.0, key=key, scale=2.0
  )
  h_shape = (2 * z1.shape[0], z1.shape[1])
  projection, prior = losses.swd_draws(key, h_shape, distribution=distribution, normalize=normalize)
  want = 2.0 * reference.generalized(z1, z2, distribution, 5.0, 1.0, normalize, projection, prior)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_swd_draws_follow_their_priors():
  key = jax.random.key(4)
  shape = (4000, 16)
  w, g = losses.swd_draws(key, shape, distribution="swd_gaussian", normalize=False)
  np.testing.assert_allclose(w @ w.T, np.eye(16), atol=1e-5)
  assert abs(float(np.mean(g))) < 0.01 and abs(float(np.std(g)) - 1) < 0.01
  _, s = losses.swd_draws(key, shape, distribution="swd_hypersphere", normalize=False)
  np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-5)
  _, c = losses.swd_draws(key, shape, distribution="swd_hypercube", normalize=False)
  assert np.all(np.abs(c) <= 1) and abs(float(np.var(c)) - 1 / 3) < 0.01
  # Official quirk: with normalize=True the Gaussian prior is the hypersphere.
  z1, z2 = _swd_inputs(21)
  a = losses.generalized_contrastive_loss(z1, z2, distribution="swd_gaussian", weight=1.0, key=key)
  b = losses.generalized_contrastive_loss(
    z1, z2, distribution="swd_hypersphere", weight=1.0, key=key
  )
  np.testing.assert_array_equal(a, b)


def test_generalized_rejects_bad_arguments():
  z1, z2 = _swd_inputs(22)
  with pytest.raises(ValueError, match="logsumexp, swd_gaussian"):
    losses.generalized_contrastive_loss(z1, z2, distribution="swd", weight=1.0)
  with pytest.raises(ValueError, match="key="):
    losses.generalized_contrastive_loss(z1, z2, distribution="swd_hypercube", weight=1.0)


def _every_loss(pos, neg, mask, z1, z2):
  """Each kernel at tau = 0.01, as a scalar function of its float inputs."""
  key = jax.random.key(0)
  sim = dict(temperature=0.01, neg_mask=mask)
  return {
    "contrastive": (lambda p, n: losses.contrastive_loss(p, n, **sim), (pos, neg)),
    "hard": (lambda p, n: losses.hard_contrastive_loss(p, n, num_hard=2, **sim), (pos, neg)),
    "simple": (lambda p, n: losses.simple_loss(p, n, neg_mask=mask), (pos, neg)),
    "hard_simple": (
      lambda p, n: losses.hard_simple_loss(p, n, num_hard=2, neg_mask=mask),
      (pos, neg),
    ),
    "macl_linear": (lambda p, n: losses.macl_loss(p, n, alpha=0.5, **sim), (pos, neg)),
    "macl_exp": (
      lambda p, n: losses.macl_loss(p, n, alpha=2.0, schedule="exponential", **sim),
      (pos, neg),
    ),
    "relative_penalty": (lambda p, n: losses.relative_penalty(p, n, **sim), (pos, neg)),
    "nt_xent": (lambda a, b: losses.nt_xent(a, b, temperature=0.01), (z1, z2)),
    "logsumexp": (
      lambda a, b: losses.generalized_contrastive_loss(
        a, b, distribution="logsumexp", weight=1.0, temperature=0.01
      ),
      (z1, z2),
    ),
    "swd": (
      lambda a, b: losses.generalized_contrastive_loss(
        a, b, distribution="swd_hypersphere", weight=1.0, key=key
      ),
      (z1, z2),
    ),
  }


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("positive_at", [1.0, -1.0])
def test_every_loss_is_finite_at_tau_001_with_extreme_similarities(dtype, positive_at):
  # Positives at +1 with negatives at -1 (P_ii rounds to 1), and the reverse.
  pos = jnp.full((4,), positive_at, dtype)
  neg = jnp.full((4, 6), -positive_at, dtype)
  mask = np.ones((4, 6), bool)
  mask[0, 1:] = False
  e = np.eye(2, dtype=np.float32)
  z1 = jnp.asarray(np.stack([e[0], -e[0], e[1], -e[1]]), dtype)
  z2 = z1 if positive_at > 0 else -z1
  for name, (fn, args) in _every_loss(pos, neg, mask, z1, z2).items():
    value = jax.jit(fn)(*args)
    assert value.dtype == jnp.float32, name
    grads = jax.jit(jax.grad(lambda *a, fn=fn: jnp.sum(fn(*a)), argnums=(0, 1)))(*args)
    assert np.all(np.isfinite(value)), name
    for g in grads:
      assert np.all(np.isfinite(np.asarray(g, np.float32))), name


def test_bfloat16_inputs_are_computed_in_float32():
  pos, neg, mask = _similarities(23)
  pos16, neg16 = jnp.asarray(pos, jnp.bfloat16), jnp.asarray(neg, jnp.bfloat16)
  got = losses.contrastive_loss(pos16, neg16, temperature=0.07, neg_mask=mask)
  want = reference.contrastive(np.float32(pos16), np.float32(neg16), 0.07, mask)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=_atol(0.07))


def test_anchor_without_negatives_has_zero_loss_and_gradient():
  pos, neg, mask = _similarities(24)
  mask[0] = False
  for fn in (
    lambda p, n: losses.contrastive_loss(p, n, temperature=0.1, neg_mask=mask),
    lambda p, n: losses.macl_loss(p, n, temperature=0.1, alpha=0.5, neg_mask=mask),
    lambda p, n: losses.hard_contrastive_loss(p, n, temperature=0.1, num_hard=3, neg_mask=mask),
  ):
    assert fn(pos, neg)[0] == 0
    g_pos, g_neg = jax.grad(lambda p, n, fn=fn: jnp.sum(fn(p, n)), argnums=(0, 1))(pos, neg)
    assert np.all(np.isfinite(g_pos)) and np.all(np.isfinite(g_neg))
    assert g_neg[0].sum() == 0


@pytest.mark.parametrize("bad", [0.0, -0.5])
def test_non_positive_temperature_is_rejected(bad):
  pos, neg, _ = _similarities(25)
  with pytest.raises(ValueError, match="temperature must be > 0"):
    losses.contrastive_loss(pos, neg, temperature=bad)
  with pytest.raises(ValueError, match="temperature must be > 0"):
    losses.nt_xent(neg, neg, temperature=bad)


def test_shape_errors_are_clear():
  pos, neg, mask = _similarities(26)
  with pytest.raises(ValueError, match="pos must be \\[N\\] and neg \\[N, K\\]"):
    losses.contrastive_loss(pos[:3], neg, temperature=0.1)
  with pytest.raises(ValueError, match="neg_mask must have neg's shape"):
    losses.contrastive_loss(pos, neg, temperature=0.1, neg_mask=mask[:, :3])


def test_every_kernel_compiles_once_per_shape():
  rng = np.random.default_rng(27)
  cases = {
    "contrastive": (losses.contrastive_loss, {}),
    "hard": (losses.hard_contrastive_loss, {"num_hard": 3}),
    "macl": (losses.macl_loss, {"alpha": 0.5}),
    "hard_simple": (
      lambda p, n, temperature, **kw: losses.hard_simple_loss(p, n, **kw),
      {"num_hard": 3},
    ),
    "relative_penalty": (losses.relative_penalty, {}),
  }
  for kernel, static in cases.values():
    chex.clear_trace_counter()  # counts are keyed by code location, shared by the loop

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(pos, neg, mask, tau, kernel=kernel, static=static):
      return kernel(pos, neg, temperature=tau, neg_mask=mask, **static)

    for tau in (0.07, 0.5, 2.0):
      pos, neg, mask = _similarities(int(rng.integers(1000)))
      step(pos, neg, mask, jnp.float32(tau))

  @jax.jit
  @chex.assert_max_traces(n=1)
  def embed_step(z1, z2, tau, key):
    return (
      losses.nt_xent(z1, z2, temperature=tau),
      losses.generalized_contrastive_loss(z1, z2, distribution="swd_gaussian", weight=1.0, key=key),
      losses.simple_loss(z1[:, 0], z2, neg_mask=None),
    )

  for seed in range(3):
    z1, z2 = _swd_inputs(seed)
    embed_step(z1, z2, jnp.float32(0.1 * (seed + 1)), jax.random.key(seed))


def test_isogclr_temperature_gradient_is_the_derivative_of_its_objective():
  # Per-anchor temperatures from 0.01 to 1: the gradient equals a central difference
  # of iSogCLR's F_i(tau_i) (float64 NumPy, naive), and with a moving estimate s the
  # new s is (1 - gamma) s + gamma g.
  _, neg, mask = _similarities(4)
  tau = np.geomspace(0.01, 1.0, len(neg)).astype(np.float32)
  grad, log_g = jax.jit(functools.partial(temperature_lib.isogclr_gradient, rho=0.4))(
    neg, mask, temperature=tau
  )
  h = 1e-5 * tau.astype(np.float64)
  fd = (
    reference.isogclr_objective(neg, tau + h, 0.4, mask)
    - reference.isogclr_objective(neg, tau - h, 0.4, mask)
  ) / (2 * h)
  # Two terms of size s/tau cancel: float32 leaves a few ulps of 1/tau.
  np.testing.assert_array_less(np.abs(grad - fd), 1e-5 / tau)
  g = reference.isogclr_objective(neg, tau, 0.0, mask) / tau  # log g_i
  np.testing.assert_allclose(log_g, g, rtol=1e-5, atol=1e-5)
  log_s = np.log(np.linspace(0.5, 2.0, len(neg))).astype(np.float32)
  log_s[0] = -np.inf  # never visited: s = g
  _, mixed = temperature_lib.isogclr_gradient(
    neg, mask, temperature=tau, rho=0.4, log_s=log_s, gamma=0.8
  )
  want = np.log(0.2 * np.exp(np.float64(log_s)) + 0.8 * np.exp(g))
  want[0] = g[0]
  np.testing.assert_allclose(mixed, want, rtol=1e-5, atol=1e-5)
  # Finite at tau = 0.01 with every similarity at +1 (exp(100) overflows float32).
  ones = np.ones((3, 4), np.float32)
  grad, _ = temperature_lib.isogclr_gradient(ones, None, temperature=np.full(3, 0.01), rho=0.4)
  np.testing.assert_allclose(grad, 0.4, atol=1e-3)  # log g - mean(w s / tau) = 0


def test_a_temperature_per_anchor_is_each_anchors_own():
  pos, neg, mask = _similarities(5)
  tau = np.geomspace(0.05, 2.0, len(pos)).astype(np.float32)
  for kernel, ref in (
    (losses.contrastive_loss, lambda t: reference.contrastive(pos, neg, t, mask)),
    (
      functools.partial(losses.hard_contrastive_loss, num_hard=5),
      lambda t: reference.hard_contrastive(pos, neg, t, 5, mask),
    ),
  ):
    got = jax.jit(kernel)(pos, neg, temperature=tau, neg_mask=mask)
    want = [ref(float(t))[i] for i, t in enumerate(tau)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=_atol(0.05))
