"""The generated and embedded datasets against their documented targets.

  python benchmarks/datasets.py [--names shapes,shapes_colour,digits,objects,objects100]

For each dataset: its shapes, class balance, raw-pixel weighted kNN accuracy (k = 200,
T = 0.1, `probes.knn_accuracy`: the baseline a learned representation must beat),
and for `objects` / `objects100` their near-duplicate fraction and generation time.
The figures quoted in `contrastive/data/embedded.py` and `contrastive/data/objects.py`
come from this command.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402
from contrastive import models  # noqa: E402
from contrastive import probes  # noqa: E402
from contrastive import recipes  # noqa: E402
from contrastive.data import embedded  # noqa: E402
from contrastive.data import latent  # noqa: E402
from contrastive.data import objects  # noqa: E402

NAMES = ("shapes", "shapes_colour", "digits", "objects", "objects100", "latent")


def pixel_knn(xtr, ytr, xte, yte, k) -> float:
  """Raw-pixel weighted kNN accuracy: the pixels in [0, 1] as features."""
  flat = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
  return probes.knn_accuracy(flat(xtr), ytr, flat(xte), yte, num_classes=k)


def supervised_mlp(train, test, num_classes, *, steps=2000, batch=256, seed=0) -> float:
  """Test accuracy of the study encoder (`models.MLP`, 2 x 256) and a linear classifier
  trained with labels on freshly rendered views (Adam 1e-3, `steps` batches of
  `batch`), evaluated on the test instances' observations: what the classes allow a
  network that is told them."""
  net = models.MLP(width=256)
  key = jax.random.key(seed)
  variables = net.init(key, latent.observations(train)[:2], train=False)
  params = {"mlp": variables["params"], "w": jnp.zeros((256, num_classes)),
            "b": jnp.zeros((num_classes,))}  # fmt: skip
  stats = variables["batch_stats"]
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, stats, opt, i):
    idx = jax.random.randint(jax.random.fold_in(key, i), (batch,), 0, train.num_examples)
    x, _ = latent.views(train, jax.random.fold_in(key, steps + i), idx)

    def loss(p):
      h, new = net.apply({"params": p["mlp"], "batch_stats": stats}, x, train=True,
                         mutable=["batch_stats"])  # fmt: skip
      z = h @ p["w"] + p["b"]
      return optax.softmax_cross_entropy_with_integer_labels(z, train.labels[idx]).mean(), new

    (_, new), g = jax.value_and_grad(loss, has_aux=True)(params)
    updates, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, updates), new["batch_stats"], opt

  for i in range(steps):
    params, stats, opt = step(params, stats, opt, i)
  h = net.apply({"params": params["mlp"], "batch_stats": stats}, latent.observations(test),
                train=False)  # fmt: skip
  return float(jnp.mean(jnp.argmax(h @ params["w"] + params["b"], -1) == test.labels))


def measure_latent() -> str:
  """The latent test-bed at its defaults against the targets in its docstring."""
  cfg = recipes.latent().data
  start = time.perf_counter()
  made = latent.generate(cfg)
  train, test = (latent.to_device(made[s], made["weights"], cfg) for s in ("train", "test"))
  seconds = time.perf_counter() - start
  xtr, xte = np.asarray(latent.observations(train)), np.asarray(latent.observations(test))
  ytr, yte, k = made["train"]["labels"], made["test"]["labels"], made["num_classes"]
  centre = latent.nearest_centre_accuracy(made["test"]["content"], yte, made["class_centres"])
  knn = probes.knn_accuracy(xtr, ytr, xte, yte, num_classes=k)
  linear = probes.linear_probe(xtr, ytr, xte, yte, num_classes=k, epochs=30, learning_rate=0.1,
                               batch_size=256, decay_epochs=(20,), decay_factor=0.1)  # fmt: skip
  mlp = supervised_mlp(train, test, k)
  return (
    f"latent: train {xtr.shape}, test {xte.shape}, {k} classes; nearest class centre on the "
    f"content {centre:.3f} (target >= 0.95); on the observations: kNN {knn:.3f} (target < "
    f"0.80), linear {linear:.3f} (target 0.30-0.80); supervised MLP on views {mlp:.3f} "
    f"(target >= 0.90); generated in {seconds:.1f} s"
  )


def measure(name: str) -> str:
  if name == "latent":
    return measure_latent()
  start = time.perf_counter()
  if name in ("objects", "objects100"):
    fine_classes = name == "objects100"
    (xtr, ytr, _), (xte, yte, _) = objects.generate(0, fine_classes=fine_classes)
    k = 100 if fine_classes else 10
  else:
    (xtr, ytr), (xte, yte), k = getattr(embedded, name)(seed=0)
  seconds = time.perf_counter() - start
  counts = np.bincount(ytr, minlength=k)
  line = (
    f"{name}: train {xtr.shape}, test {xte.shape}, {k} classes of {counts.min()}-"
    f"{counts.max()} train images, raw-pixel kNN {pixel_knn(xtr, ytr, xte, yte, k):.3f}"
  )
  if name in ("objects", "objects100"):
    dup = objects.near_duplicate_fraction(xtr, xte)
    line += f", near-duplicates {100 * dup:.3f}%, generated in {seconds:.1f} s"
  return line


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--names", default=",".join(NAMES))
  args = parser.parse_args()
  names = [n for n in args.names.split(",") if n]
  unknown = sorted(set(names) - set(NAMES))
  if unknown:
    parser.error(f"unknown dataset {', '.join(unknown)}; valid: {', '.join(NAMES)}")
  print(common.machine())
  for name in names:
    print(measure(name), flush=True)


if __name__ == "__main__":
  main()
