"""Blockwise against dense NT-Xent: time and peak memory of forward + backward.

  python benchmarks/blockwise.py speed [--size 8192] [--blocks 1024,2048,4096] [--repeats 7]
  python benchmarks/blockwise.py memory [--cases dense:16384,block4096:65536,...]

speed: at 2N = --size views of D = 128, the jitted gradient of `losses.nt_xent`
with respect to both views, dense and with each block size, timed round-robin in
one process (medians of --repeats after a warm-up; ratios to dense).
memory: each case IMPL:2N (IMPL = dense or blockB) in its own subprocess, which
compiles and runs forward + backward once and reports its peak resident memory
(ru_maxrss), so one case's allocations never count towards another's.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402
from contrastive import losses  # noqa: E402

DIM = 128
TEMPERATURE = 0.2


def _views(n2):
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  z1 = jax.random.normal(k1, (n2 // 2, DIM))
  return z1, z1 + 0.3 * jax.random.normal(k2, (n2 // 2, DIM))


def _grad_fn(block_size):
  def loss(z1, z2):
    return losses.nt_xent(z1, z2, temperature=TEMPERATURE, block_size=block_size)

  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def _block(impl: str):
  return None if impl == "dense" else int(impl.removeprefix("block"))


def speed(args):
  z1, z2 = _views(args.size)
  impls = ["dense"] + [f"block{b}" for b in args.blocks.split(",")]
  fns = {impl: _grad_fn(_block(impl)) for impl in impls}
  for fn in fns.values():
    jax.block_until_ready(fn(z1, z2))
  times = {impl: [] for impl in impls}
  for _ in range(args.repeats):
    for impl, fn in fns.items():
      t = time.perf_counter()
      jax.block_until_ready(fn(z1, z2))
      times[impl].append(time.perf_counter() - t)
  print(common.machine())
  print(f"2N = {args.size}, D = {DIM}, forward + backward, medians of {args.repeats}:")
  dense = statistics.median(times["dense"])
  result = {}
  for impl in impls:
    med = statistics.median(times[impl])
    result[impl] = med
    print(f"  {impl:>10}: {med * 1e3:9.1f} ms   x{med / dense:.2f} of dense")
  common.write_json(args.json, result)


def one_case(impl: str, n2: int):
  z1, z2 = _views(n2)
  loss, grads = _grad_fn(_block(impl))(z1, z2)
  jax.block_until_ready(grads)
  peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  print(json.dumps({"impl": impl, "n2": n2, "loss": float(loss), "peak_gib": peak_kib / 2**20}))


def memory(args):
  print(common.machine())
  results = []
  for case in args.cases.split(","):
    impl, n2 = case.split(":")
    t = time.perf_counter()
    proc = subprocess.run(
      [sys.executable, __file__, "_case", impl, n2], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    if proc.returncode:
      line = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
      print(f"  {impl:>10} 2N = {n2:>7}: failed (exit {proc.returncode}) {line}")
      continue
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["wall_s"] = round(wall, 1)
    results.append(r)
    print(
      f"  {impl:>10} 2N = {n2:>7}: peak resident {r['peak_gib']:.2f} GiB, loss {r['loss']:.6f}, "
      f"{wall:.1f} s with compilation"
    )
  common.write_json(args.json, results)


def main():
  if len(sys.argv) == 4 and sys.argv[1] == "_case":
    one_case(sys.argv[2], int(sys.argv[3]))
    return
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="mode", required=True)
  s = sub.add_parser("speed")
  s.add_argument("--size", type=int, default=8192)
  s.add_argument("--blocks", default="1024,2048,4096")
  s.add_argument("--repeats", type=int, default=7)
  s.add_argument("--json")
  m = sub.add_parser("memory")
  m.add_argument("--cases", default="dense:8192,block4096:8192,dense:16384,block4096:65536")
  m.add_argument("--json")
  args = parser.parse_args()
  if args.mode == "speed":
    common.check_repeats(parser, args.repeats)
    speed(args)
  else:
    memory(args)


if __name__ == "__main__":
  main()
