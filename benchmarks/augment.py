"""Two-view augmentation throughput, and its cost against one ResNet-18 training step.

  python benchmarks/augment.py [--batch 128] [--repeats 5] [--setting 32x32] [--json out.json]

For each setting, on the default JAX device, times (medians of --repeats runs after
a warm-up, the two timed in turns in one process):
  * augmentation: `augment.augment_batch` on a uint8 batch of B images (two views
    each), jitted;
  * a ResNet-18 (--width 64, the standard model) SimCLR training step on the same
    B images' two views: forward and backward through encoder and projection
    head, NT-Xent, SGD-momentum update.
Settings: 32x32 (CIFAR stem, `simclr_cifar` recipe) and 96x96 (ImageNet stem,
`simclr_imagenet` recipe with Gaussian blur, as STL-10). Prints images/s of the
augmentation and its time as a fraction of the step.
"""

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402
from contrastive import losses  # noqa: E402
from contrastive import models  # noqa: E402
from contrastive.data import augment  # noqa: E402

SETTINGS = {
  "32x32 simclr_cifar, resnet18 cifar stem": (32, "simclr_cifar", "cifar"),
  "96x96 simclr_imagenet, resnet18 imagenet stem": (96, "simclr_imagenet", "imagenet"),
}


def make_step(model, tx):
  def loss_fn(params, batch_stats, v1, v2):
    (_, z), updates = model.apply(
      {"params": params, "batch_stats": batch_stats},
      jnp.concatenate([v1, v2]),
      train=True,
      mutable=["batch_stats"],
    )
    z1, z2 = jnp.split(z, 2)
    return losses.nt_xent(z1, z2, temperature=0.2), updates["batch_stats"]

  @jax.jit
  def step(params, batch_stats, opt_state, v1, v2):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      params, batch_stats, v1, v2
    )
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  return step


def bench(batch, repeats, width=64, settings=None, encoder="resnet18"):
  rows = []
  for name, (size, recipe, stem) in SETTINGS.items():
    if settings and not any(s in name for s in settings):
      continue
    config = augment.preset(recipe, size)
    images = jax.random.randint(jax.random.key(0), (batch, size, size, 3), 0, 256).astype(jnp.uint8)
    aug = jax.jit(lambda key, im, config=config: augment.augment_batch(key, im, config))
    model = models.create(encoder, stem=stem, width=width)
    variables = model.init(jax.random.key(1), jnp.zeros((2, size, size, 3)), train=False)
    tx = optax.sgd(0.03, momentum=0.9)
    state = [variables["params"], variables["batch_stats"], tx.init(variables["params"])]
    step = make_step(model, tx)
    v1, v2 = jax.block_until_ready(aug(jax.random.key(2), images))  # compile + warm up
    jax.block_until_ready(step(*state, v1, v2))
    times = {"augment": [], "train_step": []}
    for r in range(repeats):
      start = time.perf_counter()
      v1, v2 = jax.block_until_ready(aug(jax.random.key(r), images))
      times["augment"].append(time.perf_counter() - start)
      start = time.perf_counter()
      out = jax.block_until_ready(step(*state, v1, v2))
      times["train_step"].append(time.perf_counter() - start)
      state = list(out[:3])
    med = {k: statistics.median(v) for k, v in times.items()}
    row = {
      "setting": name,
      "encoder": encoder,
      "batch": batch,
      "augment_ms": round(med["augment"] * 1e3, 2),
      "train_step_ms": round(med["train_step"] * 1e3, 2),
      "augment_images_per_s": round(batch / med["augment"], 1),
      "augment_fraction_of_step": round(med["augment"] / med["train_step"], 4),
    }
    rows.append(row)
    print(
      f"{name}: batch {batch}, augment {row['augment_ms']} ms "
      f"({row['augment_images_per_s']} images/s, two views each), train step "
      f"{row['train_step_ms']} ms, augment/step = {row['augment_fraction_of_step']:.2%}",
      flush=True,
    )
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", default=None)
  parser.add_argument(
    "--width", type=int, default=64, help="ResNet-18 first-stage width (64 = the standard model)"
  )
  parser.add_argument(
    "--encoder", default="resnet18", help="the step's encoder (convn: a quick check of the script)"
  )
  parser.add_argument(
    "--setting", action="append", help="run only the settings whose name contains this (repeatable)"
  )
  args = parser.parse_args()
  common.check_repeats(parser, args.repeats)
  print(common.machine())
  rows = bench(args.batch, args.repeats, args.width, args.setting, args.encoder)
  common.write_json(args.json, {"machine": common.machine(), "rows": rows})


if __name__ == "__main__":
  main()
