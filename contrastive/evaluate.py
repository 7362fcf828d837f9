"""Evaluation of learned features: weighted kNN (more with the training issue).

kNN follows Wu et al. (NPID): cosine similarity to every training feature, the k
nearest vote for their labels with weight exp(s / T), the heaviest class wins.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from contrastive import numerics

# Wu et al.'s defaults, used by Wang & Liu and most contrastive papers' kNN monitors.
KNN_K = 200
KNN_TEMPERATURE = 0.1


@functools.partial(jax.jit, static_argnames=("k", "num_classes", "block_size"))
def knn_predict(
  train_features,
  train_labels,
  test_features,
  *,
  num_classes,
  k=KNN_K,
  temperature=KNN_TEMPERATURE,
  block_size=256,
) -> jax.Array:
  """Weighted kNN class predictions for `test_features`.

  Args:
    train_features: [M, D] (L2-normalised inside).
    train_labels: [M] int labels in [0, num_classes).
    test_features: [N, D].
    num_classes: number of classes.
    k: neighbours (clipped to M).
    temperature: T of the vote weights exp(s / T).
    block_size: test rows compared with all training rows at once.

  Returns:
    [N] int32 predicted labels.

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

  def block(rows):
    sim, idx = jax.lax.top_k(rows @ train.T, k)
    votes = jax.nn.one_hot(train_labels[idx], num_classes) * jnp.exp(sim / temperature)[..., None]
    return jnp.argmax(jnp.sum(votes, axis=1), axis=-1).astype(jnp.int32)

  return jax.lax.map(block, test).reshape(-1)[:n]


def knn_accuracy(
  train_features,
  train_labels,
  test_features,
  test_labels,
  *,
  num_classes,
  k=KNN_K,
  temperature=KNN_TEMPERATURE,
) -> float:
  """Top-1 accuracy of `knn_predict` on (test_features, test_labels)."""
  pred = knn_predict(
    jnp.asarray(train_features, jnp.float32),
    jnp.asarray(train_labels),
    jnp.asarray(test_features, jnp.float32),
    num_classes=num_classes,
    k=k,
    temperature=temperature,
  )
  return float(np.mean(np.asarray(pred) == np.asarray(test_labels)))
