"""The streamed input pipeline's images/s on this host, against the step it must feed.

  python benchmarks/stream.py [--batch 128] [--repeats 5] [--step-batch 16] [--width 64] [--json F]

Host side (what `streaming.train_batches` runs per example): decode a JPEG, two
random resized crops to 224x224 with flips (`streaming.crops`, `npid_imagenet`),
batch. The input is --images synthetic JPEGs of ImageNet's typical size (500x375,
smooth random colour fields plus noise, quality 90), held in memory and repeated, so
the figure is the CPU's decode-and-crop rate without disk or network reads. Timed:
--batches batches of --batch images after two warm-up batches, the median of
--repeats runs. Device side: the same step `train.py` runs on a streamed batch
(colour on the device, ResNet-50 ImageNet stem forward and backward on both views,
NT-Xent, SGD-momentum update) at --step-batch, on the default JAX device. Prints both
in images/s (an image = its two views).
"""

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import augment as augment_benchmark  # noqa: E402
from benchmarks import common  # noqa: E402
from contrastive import models  # noqa: E402
from contrastive.data import augment  # noqa: E402
from contrastive.data import streaming  # noqa: E402

SIZE = 224


def synthetic_jpegs(count: int, seed: int = 0) -> list[bytes]:
  """JPEGs of 500x375 with the byte size of photographs (smooth fields plus noise)."""
  import tensorflow as tf  # noqa: PLC0415

  rng = np.random.default_rng(seed)
  images = []
  for _ in range(count):
    coarse = rng.uniform(0, 255, (12, 16, 3)).astype(np.float32)
    smooth = tf.image.resize(coarse, [375, 500], method="bicubic").numpy()
    noisy = np.clip(smooth + rng.normal(0, 18, smooth.shape), 0, 255).astype(np.uint8)
    images.append(tf.io.encode_jpeg(noisy, quality=90).numpy())
  return images


def host_rate(jpegs, batch: int, batches: int, repeats: int) -> tuple[float, list[float]]:
  import tensorflow as tf  # noqa: PLC0415

  config = augment.preset("npid_imagenet", SIZE)
  n = len(jpegs)
  ds = tf.data.Dataset.from_tensor_slices(
    {"image": jpegs, "index": np.arange(n, dtype=np.int64), "label": np.zeros(n, np.int32)}
  ).repeat()
  ds = streaming.crops(ds, config=config, seed=0, epoch=0).batch(batch).prefetch(tf.data.AUTOTUNE)
  it = ds.as_numpy_iterator()
  for _ in range(2):
    next(it)
  rates = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(batches):
      views = next(it)["views"]
    rates.append(batches * batch / (time.perf_counter() - start))
  assert views.shape == (batch, 2, SIZE, SIZE, 3)
  return statistics.median(rates), rates


def step_rate(batch: int, repeats: int, encoder: str = "resnet50", width: int = 64) -> float:
  """Images/s of the device step on a streamed batch: colour, then a SimCLR step of
  `encoder` (ImageNet stem)."""
  config = augment.preset("npid_imagenet", SIZE)
  model = models.create(encoder, stem="imagenet", width=width)
  variables = model.init(jax.random.key(1), jnp.zeros((2, SIZE, SIZE, 3)), train=False)
  tx = optax.sgd(0.03, momentum=0.9)
  state = [variables["params"], variables["batch_stats"], tx.init(variables["params"])]
  train = augment_benchmark.make_step(model, tx)
  colour = jax.jit(augment.photometric_batch, static_argnums=2)
  views = jax.random.randint(jax.random.key(0), (batch, 2, SIZE, SIZE, 3), 0, 256).astype(jnp.uint8)
  index = jnp.arange(batch)

  def step(key, state):
    v1, v2 = colour(key, views, config, index)
    return jax.block_until_ready(train(*state, v1, v2))

  state = list(step(jax.random.key(2), state)[:3])  # compile + warm up
  times = []
  for r in range(repeats):
    start = time.perf_counter()
    state = list(step(jax.random.key(r), state)[:3])
    times.append(time.perf_counter() - start)
  return batch / statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--batches", type=int, default=4)
  parser.add_argument("--images", type=int, default=256)
  parser.add_argument("--step-batch", type=int, default=16)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", default=None)
  parser.add_argument("--encoder", default="resnet50", help="the step's encoder (models.ENCODERS)")
  parser.add_argument(
    "--width", type=int, default=64, help="ResNet first-stage width (64 = the standard model)"
  )
  args = parser.parse_args()
  common.check_repeats(parser, args.repeats)
  print(common.machine())
  jpegs = synthetic_jpegs(args.images)
  kib = np.mean([len(j) for j in jpegs]) / 1024
  host, runs = host_rate(jpegs, args.batch, args.batches, args.repeats)
  print(
    f"host pipeline (decode {kib:.0f} KiB JPEGs, 2 crops to {SIZE}, batch {args.batch}): "
    f"{host:.1f} images/s (runs: {', '.join(f'{r:.1f}' for r in runs)})",
    flush=True,
  )
  device = step_rate(args.step_batch, args.repeats, args.encoder, args.width)
  print(
    f"device step (colour + {args.encoder} SimCLR step, batch {args.step_batch}): {device:.2f} "
    f"images/s; the host pipeline is {host / device:.1f}x what it consumes",
    flush=True,
  )
  common.write_json(
    args.json,
    {
      "machine": common.machine(),
      "jpeg_kib": round(kib, 1),
      "host_images_per_s": round(host, 1),
      "host_runs": [round(r, 1) for r in runs],
      "step_batch": args.step_batch,
      "step_images_per_s": round(device, 2),
    },
  )


if __name__ == "__main__":
  main()
