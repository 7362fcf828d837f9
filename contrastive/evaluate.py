"""A run's evaluation: encode its data with a trained state, probe the features
(`contrastive.probes`: kNN, the linear probe, the representation metrics), and give
results.json its figures (`evaluate_state`); the kNN monitor a run logs while it trains.
"""

import json

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from contrastive import build
from contrastive import metrics
from contrastive import probes
from contrastive import step as step_lib
from contrastive.data import augment
from contrastive.data import datasets
from contrastive.data import latent
from contrastive.data import pipeline
from contrastive.data import streaming

# The raw-pixel kNN baseline of each dataset config evaluated in this process: the same
# for every run on the same data (a sweep's runs compute it once).
_PIXEL_KNN: dict = {}


def _eval_apply(model, variables, x):
  return model.apply(variables, x, train=False)


def _forward(model, variables, x):
  """The encoder's eval-mode pass, compiled with the training programs' options
  (`step.compiler_options`; on a CPU, XLA's own convolutions: 512 images through ResNet-18
  width 64 took 0.60-0.70 of their time with JAX's defaults, width 16 0.75-0.83, ConvN
  0.36-0.50; BENCHMARKS.md)."""
  return step_lib.jit_on(_eval_apply, jax.default_backend(), 0)(model, variables, x)


def encode(model, state, images, *, batch_size: int = 512):
  """Encoder features and projections (eval-mode BatchNorm) of float images [N, ...].

  `state` holds the model's `params` and `batch_stats`. One compiled forward pass
  serves every call (the variables are arguments): a last partial chunk is padded to
  `batch_size` rows (eval-mode BatchNorm treats rows independently) and cut after.

  Returns:
    (features [N, F], projections [N, D]) as float32 NumPy arrays.
  """
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  n = images.shape[0]
  size = min(batch_size, n)
  feats, projs = [], []
  for i in range(0, n, size):
    chunk = images[i : i + size]
    rows = chunk.shape[0]
    if rows < size:
      chunk = jnp.concatenate([chunk, jnp.zeros((size - rows, *chunk.shape[1:]), chunk.dtype)])
    f, z = _forward(model, variables, chunk)
    feats.append(np.asarray(f, np.float32)[:rows])
    projs.append(np.asarray(z, np.float32)[:rows])
  return np.concatenate(feats), np.concatenate(projs)


def knn_monitor(config, run: build.Run):
  """The kNN monitor of a run (eval.monitor_every): a function state -> the weighted
  kNN accuracy of the first eval.monitor_examples test images against as many
  training images, encoded clean (eval-mode BatchNorm) by the state's encoder; for a
  population's stacked state, a list with each member's. The slices are cut once, here.
  A device-held dataset only (a streamed one is refused by the config's check)."""
  replicated = NamedSharding(run.setup.mesh, P())

  def head(data):
    n = min(config.eval.monitor_examples, data.num_examples)
    cut = jax.jit(lambda d: (datasets.clean_inputs(d, n), d.labels[:n]), out_shardings=replicated)
    images, labels = cut(data)
    return images, np.asarray(labels)

  (train_x, train_y), (test_x, test_y) = head(run.data.train), head(run.data.test)

  def accuracy(state):
    return probes.knn_accuracy(
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


def _device_features(run: build.Run, state):
  """Features of a device-held run's splits: (train_f, train_y, test_f, test_z, test_y,
  z1, z2, (train pixels, test pixels)); for the latent test-bed, its clean
  observations stand for the pixels."""
  replicate = jax.jit(lambda x: x, out_shardings=NamedSharding(run.setup.mesh, P()))
  train_data, test_data = replicate(run.data.train), replicate(run.data.test)
  key = jax.random.fold_in(run.root, 3)
  train_x, test_x = datasets.clean_inputs(train_data), datasets.clean_inputs(test_data)
  if isinstance(train_data, latent.LatentData):
    views = lambda: latent.eval_views(test_data, key)  # noqa: E731
  else:
    program = step_lib.jit_on(pipeline.eval_views, jax.default_backend(), 2, run_once=True)
    views = lambda: program(test_data, key, run.setup.augment)  # noqa: E731
  train_y = np.asarray(train_data.labels)[: train_data.num_examples]
  test_y = np.asarray(test_data.labels)[: test_data.num_examples]
  train_f, _ = encode(run.setup.model, state, train_x)
  test_f, test_z = encode(run.setup.model, state, test_x)
  v1, v2 = views()
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


def _streamed_features(run: build.Run, state):
  """`_device_features` of a streamed run: each process encodes its shard's centre
  crops (and two augmented views of the test split), the rows then gathered; no pixel
  features (an ImageNet split's pixels do not fit in memory)."""
  model, size = run.setup.model, run.setup.augment.size
  # This process's copy of the (replicated) variables: each process encodes its own
  # shard on its own device, not the same batch everywhere.
  variables = jax.tree.map(
    lambda x: x.addressable_data(0), {"params": state.params, "batch_stats": state.batch_stats}
  )
  colour = step_lib.jit_on(augment.photometric_batch, jax.default_backend(), 2, run_once=True)
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


def evaluate_state(config, run: build.Run, state) -> dict:
  """kNN, linear probe, pixel kNN and representation metrics of a trained state.

  `run` is the `build.Run` the state belongs to (its setup, data and root key);
  `state` holds `params` and `batch_stats` (a `step.TrainState`).

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

  # The features' neighbours once, for every label set's vote (the probes' too).
  near = probes.knn_neighbours(jnp.asarray(train_f, jnp.float32),
                               jnp.asarray(test_f, jnp.float32), k=config.eval.knn_k)  # fmt: skip

  def knn(train_features, train_labels, test_features, test_labels, classes, neighbours=None):
    return probes.knn_accuracy(
      train_features,
      train_labels,
      test_features,
      test_labels,
      num_classes=classes,
      k=config.eval.knn_k,
      temperature=config.eval.knn_temperature,
      neighbours=neighbours,
    )

  def linear(train_labels, test_labels, classes):
    return probes.linear_probe(
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
    "knn_accuracy": knn(train_f, train_y, test_f, test_y, num_classes, near),
    "linear_accuracy": linear(train_y, test_y, num_classes),
    **probes.representation_metrics(test_z, test_y, z1, z2),
  }
  probe = state.probe_params
  if probe is not None:  # the online probe trained alongside (eval.online_probe)
    probe = jax.tree.map(np.asarray, probe)
    logits = test_f @ probe["w"] + probe["b"]
    results["online_linear_accuracy"] = float(np.mean(np.argmax(logits, -1) == test_y))
  if pixels is not None:  # the data's own: one kNN per dataset in a process (a sweep's)
    key = (json.dumps(config.data.to_dict(), sort_keys=True, default=str),
           config.eval.knn_k, config.eval.knn_temperature)  # fmt: skip
    if key not in _PIXEL_KNN:
      _PIXEL_KNN[key] = knn(pixels[0], train_y, pixels[1], test_y, num_classes)
    results["pixel_knn_accuracy"] = _PIXEL_KNN[key]
  for name, probe in run.data.probes.items():
    results[f"{name}_knn_accuracy"] = knn(
      train_f, probe.train_labels, test_f, probe.test_labels, probe.num_classes, near
    )
    results[f"{name}_linear_accuracy"] = linear(
      probe.train_labels, probe.test_labels, probe.num_classes
    )
    if name == "superclass":  # tolerance at each level of the hierarchy
      results["superclass_tolerance"] = float(metrics.tolerance(test_z, probe.test_labels))
  if run.data.latents is not None:  # how much of the true latent the features recover
    results["latent_r2"] = probes.latent_r2(train_f, run.data.latents[0], test_f,
                                            run.data.latents[1])  # fmt: skip
  return results
