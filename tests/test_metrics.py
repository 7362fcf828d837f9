"""Representation metrics against float64 NumPy references, and their memory."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive import metrics
from contrastive import probes
from tests import reference


def _features(seed, n=45, d=8):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("block_size", [1, 7, 45, 1024])
@pytest.mark.parametrize("t", [1.0, 2.0])
def test_uniformity_matches_reference(block_size, t):
  z, _ = _features(0)
  got = jax.jit(functools.partial(metrics.uniformity_loss, t=t, block_size=block_size))(z)
  np.testing.assert_allclose(got, reference.uniformity(z, t), rtol=1e-5)
  # the reported figure is its negative (one sign everywhere: higher is more uniform)
  np.testing.assert_allclose(metrics.uniformity(z, t=t, block_size=block_size), -got, rtol=1e-6)


def test_uniformity_of_identical_points_is_zero_and_of_antipodes_is_2t():
  z = np.tile(np.float32([[1.0, 2.0]]), (5, 1))
  np.testing.assert_allclose(metrics.uniformity(z), 0.0, atol=1e-6)
  # Two antipodal points: ||z_1 - z_2||^2 = 4, the most uniform pair (-L_unif = 4t).
  np.testing.assert_allclose(metrics.uniformity(np.float32([[0, 1], [0, -1]])), 8.0, rtol=1e-6)
  np.testing.assert_allclose(
    metrics.uniformity_loss(np.float32([[0, 1], [0, -1]]), t=4.0), -16.0, rtol=1e-6
  )


@pytest.mark.parametrize("num_classes", [2, 5, 45])
def test_tolerance_matches_reference(num_classes):
  z, _ = _features(1)
  rng = np.random.default_rng(num_classes)
  labels = rng.integers(0, num_classes, len(z))
  labels[:2] = 0  # at least one same-label pair
  labels = labels * 7 - 3  # arbitrary integers: no class count needed
  got = jax.jit(metrics.tolerance)(z, labels)
  np.testing.assert_allclose(got, reference.tolerance(z, labels), rtol=1e-5, atol=1e-6)


def test_tolerance_is_one_for_collapsed_classes_and_nan_without_pairs():
  z = np.float32([[1, 0], [2, 0], [0, 3], [0, 1]])
  np.testing.assert_allclose(metrics.tolerance(z, np.array([4, 4, 9, 9])), 1.0, atol=1e-6)
  np.testing.assert_allclose(metrics.tolerance(z, np.array([4, 9, 4, 9])), 0.0, atol=1e-6)
  assert np.isnan(metrics.tolerance(z, np.arange(4)))


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_alignment_matches_reference(alpha):
  z1, z2 = _features(2)
  got = jax.jit(functools.partial(metrics.alignment, alpha=alpha))(z1, z2)
  np.testing.assert_allclose(got, reference.alignment(z1, z2, alpha), rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5, 2.0, 3.0])
def test_alignment_gradient_at_an_aligned_pair_is_zero_and_elsewhere_unchanged(alpha):
  # ||d||^alpha through sq^(alpha / 2): an infinite derivative at sq = 0 times 0 was
  # NaN. The aligned pair's gradient is 0 (Wang & Isola's torch code gives 0 too),
  # and the other pairs' gradients are those of the mean over them alone, rescaled.
  z1, z2 = _features(5, n=4)
  z1[1] = z2[1] = np.eye(8)[3]  # exactly aligned: unit vectors normalise without rounding
  grad = jax.jit(jax.grad(functools.partial(metrics.alignment, alpha=alpha), argnums=(0, 1)))
  g1, g2 = (np.asarray(g) for g in grad(z1, z2))
  assert np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))
  np.testing.assert_array_equal(g1[1], 0.0)
  np.testing.assert_array_equal(g2[1], 0.0)
  rest = [0, 2, 3]
  r1, r2 = (np.asarray(g) * 3 / 4 for g in grad(z1[rest], z2[rest]))
  np.testing.assert_allclose(g1[rest], r1, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(g2[rest], r2, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("block_size", [4, 45, 1024])
def test_local_separation_matches_reference(block_size):
  z1, z2 = _features(3)
  got = jax.jit(functools.partial(metrics.local_separation, k=10, block_size=block_size))(z1, z2)
  assert got.shape == (11,)
  np.testing.assert_allclose(got, reference.local_separation(z1, z2, 10), rtol=1e-5, atol=1e-6)
  assert np.all(np.diff(np.asarray(got)[1:]) <= 0)  # n1 >= n2 >= ... >= n10


def test_metric_argument_errors_are_clear():
  z1, z2 = _features(4)
  with pytest.raises(ValueError, match="at least 2"):
    metrics.uniformity(z1[:1])
  with pytest.raises(ValueError, match="labels must be"):
    metrics.tolerance(z1, np.zeros(3, int))
  with pytest.raises(ValueError, match="N > k"):
    metrics.local_separation(z1[:5], z2[:5], k=10)


@pytest.mark.parametrize(
  "name,fn,extra",
  [
    ("uniformity", metrics.uniformity, ()),
    ("tolerance", metrics.tolerance, (jax.ShapeDtypeStruct((50_000,), jnp.int32),)),
    ("local_separation", lambda z: metrics.local_separation(z, z), ()),
  ],
)
def test_metrics_fit_50000_by_128_in_2_gib(name, fn, extra):
  # XLA's own accounting of the compiled program: inputs, outputs and temporaries.
  z = jax.ShapeDtypeStruct((50_000, 128), jnp.float32)
  memory = jax.jit(fn).lower(z, *extra).compile().memory_analysis()
  total = memory.temp_size_in_bytes + memory.argument_size_in_bytes + memory.output_size_in_bytes
  assert total < 2 * 2**30, f"{name}: {total / 2**30:.2f} GiB"


def test_knn_votes_as_a_naive_numpy_knn_and_shares_its_neighbours_across_label_sets():
  rng = np.random.default_rng(3)
  train, test = rng.normal(size=(300, 16)), rng.normal(size=(70, 16))
  labels, coarse = rng.integers(0, 7, 300), rng.integers(0, 2, 300)

  def naive(y, classes, k=20, t=0.1):
    a = train / np.linalg.norm(train, axis=1, keepdims=True)
    b = test / np.linalg.norm(test, axis=1, keepdims=True)
    s = b @ a.T
    top = np.argsort(-s, axis=1)[:, :k]
    votes = np.zeros((len(test), classes))
    for i, row in enumerate(top):
      for j in row:
        votes[i, y[j]] += np.exp(s[i, j] / t)
    return votes.argmax(1)

  near = probes.knn_neighbours(train.astype(np.float32), test.astype(np.float32), k=20,
                               block_size=32)  # fmt: skip
  for y, classes in ((labels, 7), (coarse, 2)):
    got = probes.knn_vote(near, jnp.asarray(y), num_classes=classes)
    np.testing.assert_array_equal(got, naive(y, classes))
    direct = probes.knn_predict(train, y, test, num_classes=classes, k=20)
    np.testing.assert_array_equal(direct, got)
