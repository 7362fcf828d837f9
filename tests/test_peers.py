"""Our kernels against peer implementations, transcribed as small NumPy functions.

Each peer below is a line-by-line NumPy transcription of another project's code
(PyTorch or TensorFlow), with the repository, commit and file it came from, kept
as close to the original as NumPy allows (its quirks included), so that a
disagreement points at a difference of semantics, not of transcription. Values are
compared in float64 on fixed inputs; where the peer's loss has no stop-gradient,
our gradient is compared with a central difference of the peer's value.

tests/reference.py holds the independent references written from the papers'
equations; this module answers a different question: does a user switching from
lightly (NT-Xent, DCL, MACL), solo-learn, SupContrast, the MACL release, Chen et al.'s notebook or
Wang & Isola's code get the same numbers here.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive import losses
from contrastive import metrics
from contrastive import pairs


def _normalize(x):  # torch.nn.functional.normalize / tf.math.l2_normalize
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _logsumexp(x, axis):
  m = np.max(x, axis=axis, keepdims=True)
  return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def _log_softmax(x):
  return x - _logsumexp(x, 1)[:, None]


def _cross_entropy(logits, labels):  # torch.nn.CrossEntropyLoss(), reduction "mean"
  return -np.mean(_log_softmax(logits)[np.arange(len(labels)), labels])


# lightly-ai/lightly @ e8d317fc5a87f4387a85a35e689869039ec249ee,
# lightly/loss/ntx_ent_loss.py, NTXentLoss.forward (one process).
def lightly_ntxent(out0, out1, temperature, negatives=None):
  out0, out1 = _normalize(out0), _normalize(out1)
  batch_size = out0.shape[0]
  if negatives is not None:  # the memory-bank branch: negatives [embedding, bank]
    sim_pos = np.einsum("nc,nc->n", out0, out1)[:, None]
    sim_neg = np.einsum("nc,ck->nk", out0, negatives)
    logits = np.concatenate([sim_pos, sim_neg], axis=1) / temperature
    return _cross_entropy(logits, np.zeros(batch_size, int))
  diag_mask = np.eye(batch_size, dtype=bool)
  logits_00 = np.einsum("nc,mc->nm", out0, out0) / temperature
  logits_01 = np.einsum("nc,mc->nm", out0, out1) / temperature
  logits_10 = np.einsum("nc,mc->nm", out1, out0) / temperature
  logits_11 = np.einsum("nc,mc->nm", out1, out1) / temperature
  logits_00 = logits_00[~diag_mask].reshape(batch_size, -1)
  logits_11 = logits_11[~diag_mask].reshape(batch_size, -1)
  logits = np.concatenate(
    [np.concatenate([logits_01, logits_00], 1), np.concatenate([logits_10, logits_11], 1)], 0
  )
  labels = np.tile(np.arange(batch_size), 2)
  return _cross_entropy(logits, labels)


# lightly-ai/lightly @ e8d317fc5a87f4387a85a35e689869039ec249ee,
# lightly/loss/dcl_loss.py, DCLLoss.forward and _loss (weight_fn None, one process).
def lightly_dcl(out0, out1, temperature):
  out0, out1 = _normalize(out0), _normalize(out1)

  def one_side(out0, out1):
    batch_size = out0.shape[0]
    diag_mask = np.eye(batch_size, dtype=bool)
    sim_00 = np.einsum("nc,mc->nm", out0, out0) / temperature
    sim_01 = np.einsum("nc,mc->nm", out0, out1) / temperature
    positive_loss = -sim_01[diag_mask]
    sim_00 = sim_00[~diag_mask].reshape(batch_size, -1)
    sim_01 = sim_01[~diag_mask].reshape(batch_size, -1)
    negative_loss = _logsumexp(np.concatenate([sim_00, sim_01], axis=1), 1)
    return (positive_loss + negative_loss).mean()

  return 0.5 * (one_side(out0, out1) + one_side(out1, out0))


# vturrisi/solo-learn @ 9187ea39c2c3f43c455ab06664d2b019a9802954,
# solo/losses/simclr.py, simclr_loss_func (one process: gather is the identity).
def solo_learn_simclr(z, indexes, temperature):
  z = _normalize(z)
  sim = np.exp(np.einsum("if, jf -> ij", z, z) / temperature)
  pos_mask = indexes[:, None] == indexes[None, :]
  np.fill_diagonal(pos_mask, False)
  neg_mask = indexes[:, None] != indexes[None, :]
  pos = np.sum(sim * pos_mask, 1)
  neg = np.sum(sim * neg_mask, 1)
  return -np.mean(np.log(pos / (pos + neg)))


# HobbitLong/SupContrast @ 66a8fe53880d6a1084b2e4e0db0a019024d6d41a, losses.py,
# SupConLoss.forward with labels=None and mask=None (SimCLR), contrast_mode "all".
def supcontrast_simclr(features, temperature, base_temperature):
  batch_size, contrast_count = features.shape[:2]
  mask = np.eye(batch_size)
  contrast_feature = np.concatenate([features[:, v] for v in range(contrast_count)], 0)
  anchor_feature, anchor_count = contrast_feature, contrast_count
  anchor_dot_contrast = anchor_feature @ contrast_feature.T / temperature
  logits = anchor_dot_contrast - np.max(anchor_dot_contrast, axis=1, keepdims=True)
  mask = np.tile(mask, (anchor_count, contrast_count))
  logits_mask = np.ones_like(mask)
  logits_mask[np.arange(batch_size * anchor_count), np.arange(batch_size * anchor_count)] = 0
  mask = mask * logits_mask
  exp_logits = np.exp(logits) * logits_mask
  log_prob = logits - np.log(exp_logits.sum(1, keepdims=True))
  mask_pos_pairs = mask.sum(1)
  mask_pos_pairs = np.where(mask_pos_pairs < 1e-6, 1, mask_pos_pairs)
  mean_log_prob_pos = (mask * log_prob).sum(1) / mask_pos_pairs
  loss = -(temperature / base_temperature) * mean_log_prob_pos
  return loss.reshape(anchor_count, batch_size).mean()


# winnerziqi/MACL @ 04c8f8ad6fb8e0360b56344921fd9b1738a17665, MACL.py: MACLa (the
# exponential schedule, tau_init * alpha ** A) and MACLb (the linear one,
# tau_init * (1 + beta * A)). fx, gx are normalised by the caller, as there.
def official_macl(fx, gx, tau_init, strength, schedule):
  logits = fx @ gx.T
  a = np.trace(logits) / fx.shape[0]
  tau = tau_init * strength**a if schedule == "exponential" else tau_init * (1 + strength * a)
  z = logits / tau
  p = np.exp(z - _logsumexp(z, 1)[:, None])  # torch.softmax(logits / tau, dim=1)
  mask = ~np.eye(p.shape[0], dtype=bool)
  w0 = p[mask].reshape(p.shape[0], -1).sum(-1)
  w = np.ones(fx.shape[0]) / w0
  loss = -w * np.diag(np.log(p))
  return loss.mean()


# lightly-ai/lightly @ e8d317fc5a87f4387a85a35e689869039ec249ee,
# lightly/loss/macl_loss.py, MACLLoss.forward (eps = 1e-8 in its weight).
def lightly_macl(z0, z1, temperature, alpha, a_0, eps=1e-8):
  z0, z1 = _normalize(z0), _normalize(z1)
  out = np.concatenate([z0, z1], 0)
  batch_size, n_samples = z0.shape[0], len(out)
  cov = out @ out.T
  mask = np.ones(cov.shape, bool)
  idx = np.arange(n_samples)
  mask[idx, idx] = False
  mask[idx[:batch_size], idx[:batch_size] + batch_size] = False
  mask[idx[batch_size:], idx[batch_size:] - batch_size] = False
  neg = cov[mask].reshape(n_samples, -1)
  u_b, l_b = np.diag(cov, batch_size), np.diag(cov, -batch_size)
  pos = np.concatenate([u_b, l_b]).reshape(n_samples, 1)
  a = np.mean(pos)
  t = temperature * (1 + alpha * (a - a_0))
  log_prob = _log_softmax(np.concatenate([pos, neg], 1) / t)
  log_pos_prob = log_prob[:, 0]
  v = 1.0 / (1.0 - np.exp(log_pos_prob) + eps)
  return np.mean(-v * log_pos_prob)


# google-research/simclr @ 1839ca4c058b5e478982fd88a835a9e5010137e1,
# colabs/intriguing_properties/generalized_contrastive_loss.ipynb:
# generalized_contrastive_loss, get_logsumexp_loss, get_swd_loss. The random
# orthogonal matrix and the prior samples are passed in (the notebook draws them).
def notebook_generalized(hidden1, hidden2, lambda_weight, temperature, dist, hidden_norm,
                         loss_scaling, rand_w=None, states_prior=None):  # fmt: skip
  hidden_dim = hidden1.shape[-1]
  if hidden_norm:
    hidden1, hidden2 = _normalize(hidden1), _normalize(hidden2)
  loss_align = np.mean((hidden1 - hidden2) ** 2) / 2.0
  hiddens = np.concatenate([hidden1, hidden2], 0)
  if dist == "logsumexp":
    scores = hiddens @ hiddens.T
    loss_dist_match = np.mean(_logsumexp(scores / temperature, 1) - np.log(hidden_dim))
  else:
    states_t = np.sort((hiddens @ rand_w).T, axis=-1)  # the notebook's rank sort
    if hidden_norm:
      states_prior = _normalize(states_prior)
    states_prior_t = np.sort((states_prior @ rand_w).T, axis=-1)
    loss_dist_match = np.mean((states_prior_t - states_t) ** 2)
  return loss_scaling * (loss_align + lambda_weight * loss_dist_match)


# ssnl/align_uniform @ 78ccdb19af60126564ef60c84443722ae2fda28d,
# align_uniform/__init__.py (inputs normalised by the caller, as in its examples).
def wang_isola_align(x, y, alpha=2):
  return np.mean(np.linalg.norm(x - y, axis=1) ** alpha)


def wang_isola_uniform(x, t=2):
  i, j = np.triu_indices(len(x), k=1)  # torch.pdist: the pairs i < j
  return np.log(np.mean(np.exp(-t * np.linalg.norm(x[i] - x[j], axis=1) ** 2)))


def _views(seed, n=6, d=5, noise=0.6):
  rng = np.random.default_rng(seed)
  z1 = rng.normal(size=(n, d))
  return z1, z1 + noise * rng.normal(size=(n, d))


def _central_difference(f, args, h=1e-6):
  """d f / d args[k] for each array in args, by central differences (float64)."""
  grads = []
  for k, x in enumerate(args):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
      up, down = [a.copy() for a in args], [a.copy() for a in args]
      up[k][idx] += h
      down[k][idx] -= h
      g[idx] = (f(*up) - f(*down)) / (2 * h)
    grads.append(g)
  return grads


def _check(ours, peer, args, *, rtol=1e-12, grad=True):
  """Our value (jitted, float64) equals the peer's; and our gradient its central
  difference when `grad`."""
  with jax.enable_x64(True):
    value, grads = jax.jit(jax.value_and_grad(ours, argnums=tuple(range(len(args)))))(*args)
    np.testing.assert_allclose(value, peer(*args), rtol=rtol)
    if not grad:
      return
    # A central difference is good to ~1e-8 here; a value looser than 1e-12 (an
    # input the peer rounds differently) loosens its gradient alike.
    for got, want in zip(grads, _central_difference(peer, args), strict=True):
      scale = (1e-8 if rtol <= 1e-12 else 10 * rtol) * np.max(np.abs(want))
      np.testing.assert_allclose(got, want, rtol=1e-6, atol=scale)


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_nt_xent_equals_lightly_solo_learn_and_supcontrast(tau):
  z1, z2 = _views(0)
  ours = functools.partial(losses.nt_xent, temperature=tau)
  _check(ours, functools.partial(lightly_ntxent, temperature=tau), (z1, z2))
  indexes = np.tile(np.arange(len(z1)), 2)
  solo = lambda a, b: solo_learn_simclr(np.concatenate([a, b]), indexes, tau)
  _check(ours, solo, (z1, z2), grad=False)
  # SupContrast expects normalised features [bsz, n_views, d]; its loss is scaled
  # by temperature / base_temperature (1 here, as SimCLR).
  sup = lambda a, b: supcontrast_simclr(np.stack([_normalize(a), _normalize(b)], 1), tau, tau)
  _check(ours, sup, (z1, z2), grad=False)


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_dcl_equals_lightlys(tau):
  z1, z2 = _views(9)
  _check(functools.partial(losses.dcl, temperature=tau),
         functools.partial(lightly_dcl, temperature=tau), (z1, z2))  # fmt: skip


def test_memory_bank_contrastive_loss_equals_lightlys_memory_bank_branch():
  # lightly's bank is a queue of past features, all of them negatives; ours masks
  # the anchor's own entry (NPID), so this compares the kernel on the same
  # negatives without that mask.
  z1, z2 = _views(1)
  bank = _normalize(np.random.default_rng(2).normal(size=(11, z1.shape[1])))
  indices = np.arange(len(z1))

  def ours(a, b):
    pos, neg, _ = pairs.memory_bank_pairs(a, b, bank, indices)
    return jnp.mean(losses.contrastive_loss(pos, neg, temperature=0.1))

  _check(ours, lambda a, b: lightly_ntxent(a, b, 0.1, negatives=bank.T), (z1, z2))


@pytest.mark.parametrize("schedule,strength", [("exponential", 2.0), ("linear", 1.0)])
@pytest.mark.parametrize("tau_0", [0.1, 0.5])
def test_macl_equals_the_official_release(schedule, strength, tau_0):
  # The release's cross-view layout, one direction (N anchors against the other
  # view). tau_0 >= 0.1, where the release is accurate (below, it forms 1 - P by
  # cancellation). Its weight is detached, so values only.
  z1, z2 = _views(3, noise=0.4)

  def ours(a, b):
    pos, neg, mask = pairs.cross_view_pairs(a, b, symmetric=False)
    return jnp.mean(
      losses.macl_loss(
        pos, neg, temperature=tau_0, alpha=strength, schedule=schedule, neg_mask=mask
      )  # fmt: skip
    )

  peer = lambda a, b: official_macl(_normalize(a), _normalize(b), tau_0, strength, schedule)
  _check(ours, peer, (z1, z2), grad=False)


@pytest.mark.parametrize("tau_0,alpha,a_0", [(0.1, 0.5, 0.0), (0.5, 1.0, 0.3)])
def test_macl_equals_lightlys(tau_0, alpha, a_0):
  # SimCLR's 2N - 2 layout. lightly adds eps = 1e-8 to 1 - P in its weight, which
  # moves each anchor's loss by a relative eps / (1 - P): equal without it, and
  # within that bound with it.
  z1, z2 = _views(4, noise=0.4)
  ours = functools.partial(losses.macl_nt_xent, temperature=tau_0, alpha=alpha,
                           alignment_ref=a_0)  # fmt: skip
  peer = functools.partial(lightly_macl, temperature=tau_0, alpha=alpha, a_0=a_0)
  _check(ours, functools.partial(peer, eps=0.0), (z1, z2), grad=False)
  with jax.enable_x64(True):
    h = np.concatenate([_normalize(z1), _normalize(z2)])
    sim = h @ h.T
    pos = np.concatenate([np.diag(sim, len(z1)), np.diag(sim, -len(z1))])
    tau = tau_0 * (1 + alpha * (np.mean(pos) - a_0))
    p_pos = np.exp(pos / tau) / (np.sum(np.exp(sim / tau), axis=1) - np.exp(1 / tau))
    bound = 1e-8 / np.min(1 - p_pos)
    np.testing.assert_allclose(ours(z1, z2), peer(z1, z2), rtol=1.01 * bound)


@pytest.mark.parametrize("normalize", [True, False])
def test_generalized_logsumexp_equals_the_notebook(normalize):
  z1, z2 = _views(5)
  ours = functools.partial(losses.generalized_contrastive_loss, distribution="logsumexp",
                           weight=0.7, temperature=0.3, normalize=normalize, scale=2.0)  # fmt: skip
  peer = functools.partial(notebook_generalized, lambda_weight=0.7, temperature=0.3,
                           dist="logsumexp", hidden_norm=normalize, loss_scaling=2.0)  # fmt: skip
  _check(ours, peer, (z1, z2))


@pytest.mark.parametrize(
  "distribution,normalize",
  [("swd_gaussian", False), ("swd_hypersphere", True), ("swd_hypercube", False)],
)
def test_generalized_swd_equals_the_notebook(distribution, normalize):
  # The paper's three pairings of prior and normalisation. Our projection and prior
  # samples (drawn from the key) are handed to the notebook's code.
  z1, z2 = _views(6)
  key = jax.random.key(7)
  draws = functools.partial(losses.swd_draws, shape=(2 * len(z1), z1.shape[1]),
                            distribution=distribution, normalize=normalize)  # fmt: skip
  with jax.enable_x64(True):  # jitted as in the loss: eager float32 QR rounds otherwise
    rand_w, prior = (np.float64(a) for a in jax.jit(draws)(key))
  ours = functools.partial(losses.generalized_contrastive_loss, distribution=distribution,
                           weight=5.0, normalize=normalize, key=key)  # fmt: skip
  dist = "uniform" if distribution == "swd_hypercube" else "normal"
  peer = functools.partial(notebook_generalized, lambda_weight=5.0, temperature=1.0, dist=dist,
                           hidden_norm=normalize, loss_scaling=1.0, rand_w=rand_w,
                           states_prior=prior)  # fmt: skip
  # With normalize, our prior samples are drawn unit-norm in float32 and the notebook
  # normalises them again (here in float64): a move of float32 rounding, ~1e-8.
  _check(ours, peer, (z1, z2), rtol=1e-7 if normalize else 1e-12)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_alignment_and_uniformity_equal_wang_and_isola(alpha):
  z1, z2 = _views(8, n=9)
  align = lambda a, b: wang_isola_align(_normalize(a), _normalize(b), alpha)
  _check(functools.partial(metrics.alignment, alpha=alpha), align, (z1, z2))
  unif = lambda a: wang_isola_uniform(_normalize(a))
  _check(lambda a: metrics.uniformity_loss(a, t=2.0), unif, (z1,))
