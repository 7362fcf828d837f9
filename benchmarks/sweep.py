"""Wall time of a temperature population step against the separate steps it replaces.

  python benchmarks/sweep.py [--encoder convn] [--width 64] [--batch 128] [--repeats 5]
                             [--temperatures 0.07,0.2,0.3,0.5,0.7,1.0] [--json out.json]

One population step (`population.population_step`: the batch built once, the P models'
updates vmapped over tau) against P separate `step_lib.train_step`s on the same data,
one per temperature, as a sweep of separate runs would take them. Both are timed
side by side in each repeat (population, then the P separate steps); the medians
over --repeats and their ratio are printed as one JSON line. Defaults: the
quickstart's model and data (ConvN, 32x32 `shapes`); `--encoder resnet18` for
Wang & Liu's backbone.
"""

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402
from contrastive import build  # noqa: E402
from contrastive import population as population_lib  # noqa: E402
from contrastive import recipes  # noqa: E402
from contrastive import step as step_lib  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--encoder", default="convn")
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--temperatures", default="0.07,0.2,0.3,0.5,0.7,1.0")
  parser.add_argument("--json", default=None)
  args = parser.parse_args()
  common.check_repeats(parser, args.repeats)
  taus = [float(t) for t in args.temperatures.split(",")]
  config = recipes.quickstart()
  config.data.batch_size = args.batch
  config.model.update(encoder=args.encoder, width=args.width)
  config.optimizer.update(schedule="constant")
  config.eval.update(online_probe=False, monitor_every=0)  # the contrastive step alone

  run = build.build_run(config)
  pop_step = population_lib.jit_population_step(run.setup, jnp.asarray(taus))
  population = population_lib.stack_population(run.state, len(taus))
  separate = []
  for tau in taus:
    config.loss.temperature = tau
    single = build.build_run(config)
    separate.append([step_lib.jit_train_step(single.setup), single.state])

  def time_population():
    nonlocal population
    start = time.perf_counter()
    population, _ = jax.block_until_ready(pop_step(population, run.data.train, run.root))
    return time.perf_counter() - start

  def time_separate():
    start = time.perf_counter()
    for entry in separate:
      entry[1], _ = jax.block_until_ready(entry[0](entry[1], run.data.train, run.root))
    return time.perf_counter() - start

  start = time.perf_counter()
  time_population()  # compile and warm up both
  compile_population = time.perf_counter() - start
  start = time.perf_counter()
  time_separate()
  compile_separate = time.perf_counter() - start
  pop_times, sep_times = [], []
  for _ in range(args.repeats):
    pop_times.append(time_population())
    sep_times.append(time_separate())
  pop, sep = statistics.median(pop_times), statistics.median(sep_times)
  row = {
    "machine": common.machine(),
    "encoder": args.encoder,
    "width": args.width if args.encoder != "convn" else None,
    "batch": args.batch,
    "temperatures": len(taus),
    "population_step_ms": round(pop * 1e3, 1),
    "separate_steps_ms": round(sep * 1e3, 1),
    "separate_over_population": round(sep / pop, 2),
    "first_population_step_s": round(compile_population, 1),
    "first_separate_steps_s": round(compile_separate, 1),
  }
  print(json.dumps(row))
  common.write_json(args.json, row)


if __name__ == "__main__":
  main()
