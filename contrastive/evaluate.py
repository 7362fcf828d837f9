"""Evaluation of learned features: weighted kNN, linear probe, representation metrics,
and `evaluate_state`, which computes them all for a trained state (results.json).

kNN follows Wu et al. (NPID): cosine similarity to every training feature, the k
nearest vote for their labels with weight exp(s / T), the heaviest class wins.
"""

import functools

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from contrastive import metrics
from contrastive import numerics
from contrastive.data import augment
from contrastive.data import pipeline
from contrastive.data import streaming

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
  import optax  # noqa: PLC0415

  x = jnp.asarray(train_features, jnp.float32)
  y = jnp.asarray(train_labels, jnp.int32)
  n, d = x.shape
  batch_size = min(batch_size, n)  # a split smaller than one batch is one batch
  steps = n // batch_size
  schedule = optax.piecewise_constant_schedule(
    learning_rate, {int(e * steps): decay_factor for e in decay_epochs}
  )
  tx = optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(schedule, momentum=momentum))
  params = {"w": jnp.zeros((d, num_classes)), "b": jnp.zeros(num_classes)}

  def loss_fn(p, xb, yb):
    logits = xb @ p["w"] + p["b"]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))

  def epoch(carry, key):
    p, opt = carry
    order = jax.random.permutation(key, n)[: steps * batch_size].reshape(steps, batch_size)

    def step(c, idx):
      p, opt = c
      grads = jax.grad(loss_fn)(p, x[idx], y[idx])
      updates, opt = tx.update(grads, opt, p)
      return (optax.apply_updates(p, updates), opt), None

    return jax.lax.scan(step, (p, opt), order)[0], None

  @jax.jit
  def fit(params):
    keys = jax.random.split(jax.random.key(seed), epochs)
    return jax.lax.scan(epoch, (params, tx.init(params)), keys)[0][0]

  p = fit(params)
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
  unif = float(metrics.uniformity(z))
  return {
    "uniformity": -unif,
    "uniformity_loss": unif,
    "tolerance": float(metrics.tolerance(z, labels)),
    "alignment": float(metrics.alignment(z_view1, z_view2)),
    "local_separation": [float(v) for v in metrics.local_separation(z_view1, z_view2, k=k)],
  }


# ----------------------------------------------------------------------------------
# A trained state, evaluated as results.json reports it.


@functools.partial(jax.jit, static_argnums=0)
def _forward(model, variables, x):
  return model.apply(variables, x, train=False)


def encode(model, state, images, *, batch_size: int = 512):
  """Encoder features and projections (eval-mode BatchNorm) of float images [N, ...].

  `state` holds the model's `params` and `batch_stats`. One compiled forward pass
  serves every call (the variables are arguments).

  Returns:
    (features [N, F], projections [N, D]) as float32 NumPy arrays.
  """
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  feats, projs = [], []
  for i in range(0, images.shape[0], batch_size):
    f, z = _forward(model, variables, images[i : i + batch_size])
    feats.append(np.asarray(f, np.float32))
    projs.append(np.asarray(z, np.float32))
  return np.concatenate(feats), np.concatenate(projs)


def knn_monitor(config, run):
  """The kNN monitor of a run (eval.monitor_every): a function state -> the weighted
  kNN accuracy of the first eval.monitor_examples test images against as many
  training images, encoded clean (eval-mode BatchNorm) by the state's encoder; for a
  population's stacked state, a list with each member's. The slices are cut once, here.
  A device-held dataset only (a streamed one is refused by the config's check)."""
  replicated = NamedSharding(run.setup.mesh, P())

  def head(data):
    n = min(config.eval.monitor_examples, data.num_examples)
    cut = jax.jit(lambda d: (pipeline.eval_images(d, 0, n), d.labels[:n]),
                  out_shardings=replicated)  # fmt: skip
    images, labels = cut(data)
    return images, np.asarray(labels)

  (train_x, train_y), (test_x, test_y) = head(run.data.train), head(run.data.test)

  def accuracy(state):
    return knn_accuracy(
      encode(run.setup.model, state, train_x)[0],
      train_y,
      encode(run.setup.model, state, test_x)[0],
      test_y,
      num_classes=run.data.num_classes,
      k=config.eval.knn_k,
      temperature=config.eval.knn_temperature,
    )

  def monitor(state):
    if np.ndim(state.step) == 0:
      return accuracy(state)
    return [accuracy(jax.tree.map(lambda x, i=i: x[i], state)) for i in range(len(state.step))]

  return monitor


def _device_features(run, state):
  """Features of a device-held run's splits: (train_f, train_y, test_f, test_z, test_y,
  z1, z2, (train pixels, test pixels))."""
  replicate = jax.jit(lambda x: x, out_shardings=NamedSharding(run.setup.mesh, P()))
  train_data, test_data = replicate(run.data.train), replicate(run.data.test)
  train_x = pipeline.eval_images(train_data, 0, train_data.num_examples)
  test_x = pipeline.eval_images(test_data, 0, test_data.num_examples)
  train_y = np.asarray(train_data.labels)[: train_data.num_examples]
  test_y = np.asarray(test_data.labels)[: test_data.num_examples]
  train_f, _ = encode(run.setup.model, state, train_x)
  test_f, test_z = encode(run.setup.model, state, test_x)
  v1, v2 = pipeline.eval_views(test_data, jax.random.fold_in(run.root, 3), run.setup.augment)
  _, z1 = encode(run.setup.model, state, v1)
  _, z2 = encode(run.setup.model, state, v2)
  pixels = (
    np.asarray(train_x).reshape(len(train_y), -1),
    np.asarray(test_x).reshape(len(test_y), -1),
  )
  return train_f, train_y, test_f, test_z, test_y, z1, z2, pixels


def _gather(local: np.ndarray, counts) -> np.ndarray:
  """Every process's rows of a streamed split, in process order (shards may differ
  in length by a few rows: padded to the longest for the all-gather, then cut)."""
  if len(counts) == 1:
    return local
  rows = max(counts)
  padded = np.concatenate([local, np.zeros((rows - len(local), *local.shape[1:]), local.dtype)])
  every = np.asarray(multihost_utils.process_allgather(padded))
  return np.concatenate([every[p, :n] for p, n in enumerate(counts)])


def _streamed_features(run, state):
  """`_device_features` of a streamed run: each process encodes its shard's centre
  crops (and two augmented views of the test split), the rows then gathered; no pixel
  features (an ImageNet split's pixels do not fit in memory)."""
  model, size = run.setup.model, run.setup.augment.size
  # This process's copy of the (replicated) variables: each process encodes its own
  # shard on its own device, not the same batch everywhere.
  variables = jax.tree.map(
    lambda x: x.addressable_data(0), {"params": state.params, "batch_stats": state.batch_stats}
  )
  colour = jax.jit(augment.photometric_batch, static_argnums=2)
  key = jax.random.fold_in(run.root, 3)

  def clean(data):
    feats, projs, labels = [], [], []
    for batch in streaming.eval_batches(data, size=size):
      f, z = _forward(model, variables, augment.to_float(batch["image"]))
      feats.append(np.asarray(f, np.float32))
      projs.append(np.asarray(z, np.float32))
      labels.append(batch["label"])
    return [_gather(np.concatenate(x), data.counts) for x in (feats, projs, labels)]

  train_f, _, train_y = clean(run.data.train)
  test_f, test_z, test_y = clean(run.data.test)
  views = ([], [])
  for batch in streaming.view_batches(
    run.data.test, config=run.setup.augment, seed=run.setup.data_seed
  ):
    for out, v in zip(
      views, colour(key, batch["views"], run.setup.augment, batch["index"]), strict=True
    ):
      out.append(np.asarray(_forward(model, variables, v)[1], np.float32))
  z1, z2 = (_gather(np.concatenate(v), run.data.test.counts) for v in views)
  return train_f, train_y, test_f, test_z, test_y, z1, z2, None


def evaluate_state(config, run, state) -> dict:
  """kNN, linear probe, pixel kNN and representation metrics of a trained state.

  `run` is the `train.Run` the state belongs to (its setup, data and root key);
  `state` holds `params` and `batch_stats` (a `train.TrainState`).

  Features are computed once with the backbone frozen (eval-mode BatchNorm); the
  data are replicated first, so every process holds them whole. The same features
  are also probed for each of the run's extra label sets (`run.data.probes`, e.g.
  the pasted digit: digit_knn_accuracy and digit_linear_accuracy). A streamed
  dataset (`data.streaming`) is encoded batch by batch from its centre crops, and
  has no pixel kNN.
  """
  features = (
    _streamed_features if isinstance(run.data.train, streaming.StreamData) else _device_features
  )
  train_f, train_y, test_f, test_z, test_y, z1, z2, pixels = features(run, state)

  def knn(train_features, train_labels, test_features, test_labels, classes):
    return knn_accuracy(
      train_features,
      train_labels,
      test_features,
      test_labels,
      num_classes=classes,
      k=config.eval.knn_k,
      temperature=config.eval.knn_temperature,
    )

  def linear(train_labels, test_labels, classes):
    return linear_probe(
      train_f,
      train_labels,
      test_f,
      test_labels,
      num_classes=classes,
      epochs=config.eval.linear_epochs,
      learning_rate=config.eval.linear_learning_rate,
      batch_size=config.eval.linear_batch_size,
      decay_epochs=config.eval.linear_decay_epochs,
      decay_factor=config.eval.linear_decay_factor,
      seed=config.seed,
    )

  num_classes = run.data.num_classes
  results = {
    "knn_accuracy": knn(train_f, train_y, test_f, test_y, num_classes),
    "linear_accuracy": linear(train_y, test_y, num_classes),
    **representation_metrics(test_z, test_y, z1, z2),
  }
  probe = getattr(state, "probe_params", None)
  if probe is not None:  # the online probe trained alongside (eval.online_probe)
    probe = jax.tree.map(np.asarray, probe)
    logits = test_f @ probe["w"] + probe["b"]
    results["online_linear_accuracy"] = float(np.mean(np.argmax(logits, -1) == test_y))
  if pixels is not None:
    results["pixel_knn_accuracy"] = knn(pixels[0], train_y, pixels[1], test_y, num_classes)
  for name, probe in run.data.probes.items():
    results[f"{name}_knn_accuracy"] = knn(
      train_f, probe.train_labels, test_f, probe.test_labels, probe.num_classes
    )
    results[f"{name}_linear_accuracy"] = linear(
      probe.train_labels, probe.test_labels, probe.num_classes
    )
  return results
