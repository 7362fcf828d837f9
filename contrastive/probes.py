"""Probes of learned features, on arrays: weighted kNN, the linear probe, and the
representation metrics results.json reports.

Pure functions of features and labels (NumPy or JAX arrays), with no run in sight:
`evaluate` encodes a run's data and calls them; a notebook calls them on any features.
kNN follows Wu et al. (NPID): cosine similarity to every training feature, the k
nearest vote for their labels with weight exp(s / T), the heaviest class wins.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from contrastive import metrics
from contrastive import numerics

# Wu et al.'s defaults, used by Wang & Liu and most contrastive papers' kNN monitors.
KNN_K = 200
KNN_TEMPERATURE = 0.1


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def knn_neighbours(train_features, test_features, *, k=KNN_K, block_size=256):
  """Each test row's k nearest training rows by cosine similarity: (similarities
  [N, k], indices [N, k]); the votes of any label set take them (`knn_vote`).

  Args:
    train_features: [M, D] (L2-normalised inside).
    test_features: [N, D].
    k: neighbours (clipped to M).
    block_size: test rows compared with all training rows at once.

  References:
    Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
    Discrimination", CVPR 2018, Sec. 3.4.
  """
  train = numerics.l2_normalize(train_features)
  test = numerics.l2_normalize(test_features)
  k = min(k, train.shape[0])
  n = test.shape[0]
  b = min(block_size, n)
  num_blocks = -(-n // b)
  test = jnp.pad(test, ((0, num_blocks * b - n), (0, 0))).reshape(num_blocks, b, -1)
  sim, idx = jax.lax.map(lambda rows: jax.lax.top_k(rows @ train.T, k), test)
  return sim.reshape(-1, k)[:n], idx.reshape(-1, k)[:n]


@functools.partial(jax.jit, static_argnames="num_classes")
def knn_vote(neighbours, train_labels, *, num_classes, temperature=KNN_TEMPERATURE):
  """[N] int32 predictions: each test row's `knn_neighbours` vote for their labels
  `train_labels` [M] (in [0, num_classes)) with weight exp(s / temperature)."""
  sim, idx = neighbours
  votes = jax.nn.one_hot(train_labels[idx], num_classes) * jnp.exp(sim / temperature)[..., None]
  return jnp.argmax(jnp.sum(votes, axis=1), axis=-1).astype(jnp.int32)


def knn_predict(train_features, train_labels, test_features, *, num_classes, k=KNN_K,
                temperature=KNN_TEMPERATURE, block_size=256) -> jax.Array:  # fmt: skip
  """Weighted kNN class predictions [N] (int32) for `test_features` [N, D] from
  `train_features` [M, D] and their `train_labels` (Wu et al.'s: `knn_neighbours`,
  then `knn_vote`)."""
  near = knn_neighbours(train_features, test_features, k=k, block_size=block_size)
  return knn_vote(near, jnp.asarray(train_labels), num_classes=num_classes,
                  temperature=temperature)  # fmt: skip


def knn_accuracy(
  train_features,
  train_labels,
  test_features,
  test_labels,
  *,
  num_classes,
  k=KNN_K,
  temperature=KNN_TEMPERATURE,
  neighbours=None,
) -> float:
  """Top-1 accuracy of `knn_predict` on (test_features, test_labels); `neighbours`:
  the features' `knn_neighbours` where already computed (another label set's vote)."""
  if neighbours is None:
    neighbours = knn_neighbours(
      jnp.asarray(train_features, jnp.float32), jnp.asarray(test_features, jnp.float32), k=k
    )
  pred = knn_vote(neighbours, jnp.asarray(train_labels), num_classes=num_classes,
                  temperature=temperature)  # fmt: skip
  return float(np.mean(np.asarray(pred) == np.asarray(test_labels)))


def linear_probe(
  train_features,
  train_labels,
  test_features,
  test_labels,
  *,
  num_classes,
  epochs,
  learning_rate,
  batch_size,
  decay_epochs=(),
  decay_factor=0.2,
  weight_decay=0.0,
  momentum=0.9,
  seed=0,
) -> float:
  """Top-1 test accuracy of a linear classifier trained on frozen features.

  The features are computed once, beforehand, so the backbone cannot change (Wang
  & Liu's protocol: one linear layer, SGD momentum 0.9, lr x decay_factor at
  `decay_epochs`, no weight decay, single centre crop). The whole training is one
  jitted program (`lax.scan` over epochs and batches).
  """
  x = jnp.asarray(train_features, jnp.float32)
  y = jnp.asarray(train_labels, jnp.int32)
  p = _fit_linear(
    x, y, jax.random.key(seed), num_classes=num_classes, epochs=epochs,
    learning_rate=float(learning_rate), batch_size=min(batch_size, x.shape[0]),
    decay_epochs=tuple(decay_epochs), decay_factor=float(decay_factor),
    weight_decay=float(weight_decay), momentum=float(momentum),
  )  # fmt: skip
  logits = jnp.asarray(test_features, jnp.float32) @ p["w"] + p["b"]
  return float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(test_labels)))


def representation_metrics(z, labels, z_view1, z_view2, *, k=10) -> dict:
  """Uniformity, tolerance and local separation of `z`; alignment of two views.

  Args:
    z: [N, D] projections of the clean test images (L2-normalised inside).
    labels: [N] their labels (tolerance is over same-label pairs).
    z_view1, z_view2: [N, D] projections of two augmented views of the same images.
    k: nearest negatives in the local-separation profile.

  Returns:
    {"uniformity": -L_unif (the papers' sign: larger = more uniform),
     "uniformity_loss": L_unif, "tolerance", "alignment",
     "local_separation": [pos, n1, ..., nk]}.
  """
  unif, tol, align, separation = _representation(z, labels, z_view1, z_view2, k=k)
  return {
    "uniformity": -float(unif),
    "uniformity_loss": float(unif),
    "tolerance": float(tol),
    "alignment": float(align),
    "local_separation": [float(v) for v in separation],
  }


@functools.partial(jax.jit, static_argnames="k")
def _representation(z, labels, z_view1, z_view2, *, k):
  """The four metrics as one compiled program (compiled separately, they took 2.4 s
  of the quickstart's evaluation on 2 CPU cores)."""
  return (
    metrics.uniformity_loss(z),
    metrics.tolerance(z, labels),
    metrics.alignment(z_view1, z_view2),
    metrics.local_separation(z_view1, z_view2, k=k),
  )


def latent_r2(train_features, train_latents, test_features, test_latents, *, ridge=1e-3) -> float:
  """How much of a known latent the features recover: the test R^2 (mean over the
  latent's coordinates) of a ridge regression from features to latents fitted on the
  training split (features standardised; `ridge` x the identity added). 1: the
  latent is a linear function of the features; 0: no better than its mean.

  References:
    Zimmermann et al., "Contrastive Learning Inverts the Data Generating Process",
    ICML 2021 (their linear-fit R^2 of the ground-truth latents).
  """
  x, y = np.float64(train_features), np.float64(train_latents)
  mean, std = x.mean(0), x.std(0) + 1e-8
  x = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1)
  w = np.linalg.solve(x.T @ x + ridge * len(x) * np.eye(x.shape[1]), x.T @ y)
  xt = np.concatenate([(np.float64(test_features) - mean) / std, np.ones((len(test_features), 1))],
                      axis=1)  # fmt: skip
  yt = np.float64(test_latents)
  residual = np.sum((yt - xt @ w) ** 2, axis=0)
  total = np.sum((yt - yt.mean(0)) ** 2, axis=0)
  return float(np.mean(1 - residual / total))


@functools.partial(
  jax.jit,
  static_argnames=("num_classes", "epochs", "learning_rate", "batch_size", "decay_epochs",
                   "decay_factor", "weight_decay", "momentum"),
)  # fmt: skip
def _fit_linear(x, y, key, *, num_classes, epochs, learning_rate, batch_size, decay_epochs,
                decay_factor, weight_decay, momentum):  # fmt: skip
  """`linear_probe`'s training, one compiled program per shape and hyperparameters
  (the features are arguments, not constants of it: every probe of a run, and every
  member of a population, reuses it). Returns the classifier {"w", "b"}."""
  n, d = x.shape
  steps = n // batch_size  # a split smaller than one batch is one batch (the caller's)
  schedule = optax.piecewise_constant_schedule(
    learning_rate, {int(e * steps): decay_factor for e in decay_epochs}
  )
  tx = optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(schedule, momentum=momentum))
  params = {"w": jnp.zeros((d, num_classes)), "b": jnp.zeros(num_classes)}

  def loss_fn(p, xb, yb):
    logits = xb @ p["w"] + p["b"]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))

  def epoch(carry, k):
    p, opt = carry
    order = jax.random.permutation(k, n)[: steps * batch_size].reshape(steps, batch_size)

    def step(c, idx):
      p, opt = c
      grads = jax.grad(loss_fn)(p, x[idx], y[idx])
      updates, opt = tx.update(grads, opt, p)
      return (optax.apply_updates(p, updates), opt), None

    return jax.lax.scan(step, (p, opt), order)[0], None

  keys = jax.random.split(key, epochs)
  return jax.lax.scan(epoch, (params, tx.init(params)), keys)[0][0]
