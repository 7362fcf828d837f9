"""Images/s of the real ResNet-18 CIFAR training step (`contrastive.train`).

  python benchmarks/train_step.py [--batch 256] [--repeats 5] [--dtype float32]
                                  [--encoder resnet18] [--width 64] [--augment NAME]
                                  [--peak_tflops P] [--json out.json]

The step is `step_lib.train_step` as training runs it: batch gathered and augmented
on the device, ResNet-18 (CIFAR stem) + 2-layer head on both views, NT-Xent over
the global batch, SGD-momentum update (--augment: another of the augmentation presets
than the recipe's `simclr_cifar`; `none` leaves the gather and an identity crop, the
nearest to a peer fed views augmented beforehand). Reports the median step time over
--repeats runs after a warm-up (the unlogged step, and beside it, interleaved, the
logged step that also computes the similarity diagnostics), images/s (images, two
views each), and the FLOP/s
achieved according to XLA's cost analysis of the lowered step; with
--peak_tflops (the device's peak for --dtype), model FLOPs utilisation too.
"""

import argparse
import json
import os
import statistics
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402
from contrastive import build  # noqa: E402
from contrastive import models  # noqa: E402
from contrastive import recipes  # noqa: E402
from contrastive import step as step_lib  # noqa: E402
from contrastive.data import augment  # noqa: E402


def _step_flops(step, *args) -> float:
  """FLOPs of one step, from XLA's cost analysis of the program before optimisation.

  Not the compiled program's count, which omits the work XLA hands to library calls
  (cuDNN convolutions report 0 FLOPs on a GPU). Backends without a pre-compilation
  analysis (GPU) get the CPU lowering's count: the same program, so the same FLOPs.
  """
  traced = step.trace(*args)
  for platforms in (None, ("cpu",)):
    try:
      lowered = traced.lower(lowering_platforms=platforms) if platforms else traced.lower()
      cost = lowered.cost_analysis()
    except Exception as error:  # noqa: BLE001 - a backend without the analysis
      print(f"cost analysis for {platforms or 'this backend'} failed: {error}", file=sys.stderr)
      continue
    if cost and cost.get("flops"):
      return cost["flops"]
  return float("nan")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--encoder", default="resnet18", choices=tuple(models.ENCODERS))
  parser.add_argument("--augment", default="simclr_cifar", choices=tuple(augment.PRESETS))
  parser.add_argument("--peak_tflops", type=float, default=None)
  parser.add_argument("--json", default=None)
  args = parser.parse_args()
  common.check_repeats(parser, args.repeats)
  config = recipes.simclr_cifar()
  config.data.update(name="shapes", batch_size=args.batch, augment=args.augment)  # no download
  config.model.update(encoder=args.encoder, dtype=args.dtype, width=args.width)
  config.optimizer.update(name="sgd", schedule="constant", learning_rate=0.03)
  run = build.build_run(config)
  state, data, root = run.state, run.data.train, run.root
  step = step_lib.jit_train_step(run.setup)
  flops = _step_flops(step, state, data, root)
  state, _ = jax.block_until_ready(step(state, data, root))  # compile + warm up
  times = {False: [], True: []}
  for _ in range(args.repeats):
    for diagnose in (False, True):
      start = time.perf_counter()
      state, _ = jax.block_until_ready(step(state, data, root, diagnose=diagnose))
      times[diagnose].append(time.perf_counter() - start)
  med = statistics.median(times[False])
  logged = statistics.median(times[True])
  row = {
    "machine": common.machine(),
    "encoder": args.encoder,
    "batch": args.batch,
    "dtype": args.dtype,
    "width": args.width,
    "augment": args.augment,
    "step_ms": round(med * 1e3, 1),
    "logged_step_ms": round(logged * 1e3, 1),
    "images_per_s": round(args.batch / med, 1),
    "step_gflop": round(flops / 1e9, 1),
    "achieved_tflops": round(flops / med / 1e12, 4),
  }
  if args.peak_tflops:
    row["mfu"] = round(flops / med / 1e12 / args.peak_tflops, 4)
  print(json.dumps(row))
  common.write_json(args.json, row)


if __name__ == "__main__":
  main()
