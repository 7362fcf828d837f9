"""The latent test-bed: data generated from a known hierarchy of latents on the sphere.

A controlled stand-in for images, where the mechanisms the three papers describe can
be seen in minutes on a CPU, with seeds: every instance has a known content latent,
every view is rendered from it by a known (random, fixed) nonlinear map, and the
semantic structure (how crowded an instance's semantically similar neighbours are)
is a knob. After Zimmermann et al. ("Contrastive learning inverts the data
generating process", ICML 2021), with a class hierarchy added for the uniformity-
tolerance dilemma (Wang & Liu) and shortcut features for feature suppression (Chen
et al.). `data.name=latent` selects it; `model.encoder=mlp` reads its vectors.

Design, fixed on 2026-12-06 before any study ran on it (its knobs are `data.latent_*`
config keys, defaults in brackets):
* Content: latents on the unit sphere S^(d-1), d = latent_dim [8].
* Hierarchy: latent_superclasses [5] superclass centres uniform on the sphere;
  latent_classes [4] classes in each, a class centre = normalise(superclass centre +
  latent_class_spread [0.6] x g); an instance = normalise(class centre +
  latent_instance_spread [0.3] x g); g ~ N(0, I / d), so a spread is the typical
  length of the displacement before normalising. An instance's class is uniform over
  the superclasses x classes; labels at three levels (instance, class, superclass).
* Nuisance (style): latent_nuisance_dim [8] coordinates ~ latent_nuisance [1.0] x
  N(0, I). Every instance has its own (as an image has its own pose and colours),
  and every view draws a fresh one: what a view changes and a good representation
  discards.
* Views: a view keeps its instance's content up to latent_augment [0.1]:
  normalise(content + latent_augment x g), and draws its own nuisance.
* Observations: a fixed random map f([content, nuisance]) -> R^latent_obs_dim [64]:
  three dense layers, leaky ReLU (slope 0.2) between them, weights N(0, gain^2 / fan_in)
  with the leaky-ReLU gain; injective almost surely (no layer narrows, leaky ReLU is
  bijective). Drawn from data.seed, as every other part of the dataset.
* Shortcuts (the feature-suppression studies): data.randbit_bits = n appends the n
  binary digits of a hash of the instance's index to both views, after rendering (as
  RandBit appends bits to images after augmentation); data.digits_pool = k adds a
  competing factor: k prototype latents on their own sphere S^(d-1), one per instance
  (uniform), rendered with the content (f's input grows by d) and perturbed as the
  content is: a second, easier feature competing with the classes (digits on images).
  Its value is the "digit" probe.
* Splits: latent_train [10,240] and latent_test [2,048] instances, the test split
  drawn after the training split from the same stream. data.holdout_fraction = f
  (a selection stage's validation split) evaluates on the last f of the training
  instances instead, training on the rest.
* Evaluation: an instance's observation is f(content, its own nuisance);
  results.json adds how much of the true content the features recover (`latent_r2`,
  the test R^2 of a ridge fit from features to content, as Zimmermann et al.) and the
  tolerance at the superclass level (`superclass_tolerance`); the superclasses are
  the "superclass" probe.

Difficulty targets, fixed with the design (`python benchmarks/datasets.py --names
latent` measures them; BENCHMARKS.md holds the figures):
* the classes are well defined: nearest class centre on the true content >= 0.95;
* they are not readable off the observations: a linear probe on the instances'
  observations between 0.30 and 0.80, and their kNN below 0.80;
* they are learnable: a supervised MLP (the study encoder, 2 x 256) on views >= 0.90.
Measured at the defaults on 2026-12-06 (2-core CPU): nearest class centre 0.978;
observations' kNN 0.372 and linear probe 0.713; supervised MLP 0.917 (all four met).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from contrastive.data import pipeline
from contrastive.data import sources

NAME = "latent"
MAX_BITS = 24  # RandBit bits: the top 24 of a 64-bit multiplicative hash of the index
LEAKY_SLOPE = 0.2
_GAIN = math.sqrt(2.0 / (1.0 + LEAKY_SLOPE**2))  # keeps the scale through leaky ReLU


@dataclasses.dataclass(frozen=True)
class LatentData:
  """One split of the test-bed on the device(s): each instance's latents and labels,
  and the renderer; views and observations are rendered from them in the step.

  Attributes:
    content: float32 [M, d] unit content latents.
    style: float32 [M, k] each instance's own nuisance (its observation's).
    labels: int32 [M] classes; coarse: int32 [M] superclasses.
    factor: float32 [M, d] the competing factor's latent (digits_pool), or None.
    factor_labels: int32 [M] its value, or None.
    bits: float32 [M, n] RandBit bits appended to every observation, or None.
    weights: the renderer's three matrices.
    num_examples, nuisance_dim, nuisance, augment: static.
  """

  content: jax.Array
  style: jax.Array
  labels: jax.Array
  coarse: jax.Array
  factor: jax.Array | None
  factor_labels: jax.Array | None
  bits: jax.Array | None
  weights: tuple
  num_examples: int = 0
  nuisance_dim: int = 8
  nuisance: float = 1.0
  augment: float = 0.1


jax.tree_util.register_dataclass(
  LatentData,
  data_fields=[
    "content",
    "style",
    "labels",
    "coarse",
    "factor",
    "factor_labels",
    "bits",
    "weights",
  ],  # fmt: skip
  meta_fields=["num_examples", "nuisance_dim", "nuisance", "augment"],
)


def _normalise(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _gaussian(rng, shape, d):
  return rng.normal(size=shape) / math.sqrt(d)


def generate(cfg):
  """Host arrays of both splits and the renderer, from the data config `cfg`.

  Returns:
    dict: "train" and "test" each {"content", "style", "labels", "coarse", "factor",
    "factor_labels", "bits"}; "weights" (three float32 matrices); "num_classes".
  """
  d = cfg.latent_dim
  rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x1A7E]))
  supers = _normalise(rng.normal(size=(cfg.latent_superclasses, d)))
  classes = _normalise(
    np.repeat(supers, cfg.latent_classes, axis=0)
    + cfg.latent_class_spread * _gaussian(rng, (len(supers) * cfg.latent_classes, d), d)
  )
  protos = _normalise(rng.normal(size=(max(cfg.digits_pool, 1), d)))
  width_in = d + cfg.latent_nuisance_dim + (d if cfg.digits_pool else 0)
  obs = cfg.latent_obs_dim
  weights = tuple(
    np.float32(rng.normal(size=shape) * (_GAIN if i else 1.0) / math.sqrt(shape[0]))
    for i, shape in enumerate([(width_in, obs), (obs, obs), (obs, obs)])
  )
  splits = {}
  for name, n in (("train", cfg.latent_train), ("test", cfg.latent_test)):
    labels = rng.integers(0, len(classes), n)
    content = _normalise(classes[labels] + cfg.latent_instance_spread * _gaussian(rng, (n, d), d))
    factor_labels = rng.integers(0, max(cfg.digits_pool, 1), n)
    first = sum(s["labels"].shape[0] for s in splits.values())  # global instance index
    splits[name] = {
      "content": np.float32(content),
      "style": np.float32(cfg.latent_nuisance * rng.normal(size=(n, cfg.latent_nuisance_dim))),
      "labels": labels.astype(np.int32),
      "coarse": (labels // cfg.latent_classes).astype(np.int32),
      "factor": np.float32(protos[factor_labels]) if cfg.digits_pool else None,
      "factor_labels": factor_labels.astype(np.int32) if cfg.digits_pool else None,
      "bits": _bits(np.arange(first, first + n), cfg.randbit_bits),
    }
  if cfg.get("holdout_fraction"):  # a validation split: the test split is then unused
    train = splits["train"]
    keep = cfg.latent_train - sources.held_out(cfg.latent_train, cfg.holdout_fraction)
    splits = {"train": {k: None if v is None else v[:keep] for k, v in train.items()},
              "test": {k: None if v is None else v[keep:] for k, v in train.items()}}  # fmt: skip
  return {"train": splits["train"], "test": splits["test"], "weights": weights,
          "num_classes": len(classes), "class_centres": np.float32(classes)}  # fmt: skip


def _bits(index, n):
  """The n RandBit bits of each instance: the binary digits of a hash of its index,
  float32 [N, n] (constant per instance, identical in both views), or None."""
  if not n:
    return None
  h = (index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - MAX_BITS)
  return np.float32((h[:, None] >> np.arange(n, dtype=np.uint64)[None, :]) & np.uint64(1))


def to_device(split: dict, weights, cfg, *, mesh=None) -> LatentData:
  """A split on the device(s), replicated (its arrays are small: M x d floats)."""
  put = (lambda x: x) if mesh is None else (lambda x: jax.device_put(x, NamedSharding(mesh, P())))
  arrays = {k: None if v is None else put(jnp.asarray(v)) for k, v in split.items()}
  return LatentData(
    weights=tuple(put(jnp.asarray(w)) for w in weights),
    num_examples=len(split["labels"]),
    nuisance_dim=cfg.latent_nuisance_dim,
    nuisance=float(cfg.latent_nuisance),
    augment=float(cfg.latent_augment),
    **arrays,
  )


def render(weights, content, nuisance, factor=None, bits=None):
  """Observations [B, obs_dim (+ bits)] of latents [B, d], nuisances [B, k] (and the
  competing factor [B, d]): the fixed random leaky-ReLU map, then the bits."""
  parts = [content, nuisance] + ([factor] if factor is not None else [])
  x = jnp.concatenate(parts, axis=-1)
  w1, w2, w3 = weights
  x = jax.nn.leaky_relu(x @ w1, LEAKY_SLOPE)
  x = jax.nn.leaky_relu(x @ w2, LEAKY_SLOPE)
  x = x @ w3
  return x if bits is None else jnp.concatenate([x, bits], axis=-1)


def _perturb(key, latent, strength):
  d = latent.shape[-1]
  moved = latent + strength * jax.random.normal(key, latent.shape) / math.sqrt(d)
  return moved / jnp.linalg.norm(moved, axis=-1, keepdims=True)


def views(data: LatentData, key, idx):
  """Two views of the instances `idx` [B]: each its own content perturbation and
  nuisance, drawn for the whole batch at once from `key` (one draw per kind: a
  per-instance key costs more than the rest of an MLP's step). Returns 2 x float32 [B, D]."""
  kc, kn, kf = jax.random.split(key, 3)
  pair = lambda x: jnp.broadcast_to(x[:, None], (x.shape[0], 2, x.shape[-1]))  # noqa: E731
  c = _perturb(kc, pair(data.content[idx]), data.augment)
  n = data.nuisance * jax.random.normal(kn, (idx.shape[0], 2, data.nuisance_dim))
  f = None if data.factor is None else _perturb(kf, pair(data.factor[idx]), data.augment)
  bits = None if data.bits is None else data.bits[idx]
  return tuple(
    render(data.weights, c[:, v], n[:, v], None if f is None else f[:, v], bits) for v in (0, 1)
  )


def train_batch(data: LatentData, key, step, *, seed: int, batch_size: int) -> dict:
  """The batch of `step`, as `pipeline.train_batch` gives an image dataset's: instances
  in the order of (seed, epoch), their views rendered here (step's key fold_in(key, step))."""
  idx = pipeline.batch_indices(seed, step, num_examples=data.num_examples, batch_size=batch_size)
  v1, v2 = views(data, jax.random.fold_in(key, step), idx)
  return {"view1": v1, "view2": v2, "index": idx, "label": data.labels[idx]}


@jax.jit
def observations(data: LatentData):
  """Every instance's observation: its content with its own nuisance."""
  return render(data.weights, data.content, data.style, data.factor, data.bits)


@jax.jit
def eval_views(data: LatentData, key):
  """Two views of every instance, for the representation metrics."""
  return views(data, key, jnp.arange(data.num_examples))


def input_shape(cfg) -> tuple[int]:
  """The model's input: an observation and its bits."""
  return (cfg.latent_obs_dim + cfg.randbit_bits,)


def nearest_centre_accuracy(content, labels, centres) -> float:
  """The share of instances whose content is nearest (in cosine) to their own class
  centre: the classes' ceiling, what a perfect inverse of the renderer could reach."""
  return float(np.mean(np.argmax(content @ centres.T, axis=1) == labels))
