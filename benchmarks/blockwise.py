"""Blockwise against dense losses: time and peak memory of forward + backward.

  python benchmarks/blockwise.py speed [--size 8192] [--blocks 1024,2048,4096] [--repeats 7]
                                       [--loss nt_xent|hard]
  python benchmarks/blockwise.py memory [--cases dense:16384,block4096:65536,...] [--loss ...]
                                        (with --loss bank_hard, each size is a memory bank's)
  python benchmarks/blockwise.py mesh [--devices 4] [--size 8192] [--block 1024] [--repeats 5]

--loss: `losses.nt_xent`, or `losses.hard_nt_xent` keeping the 4095 hardest
negatives of each anchor (Wang & Liu's number; a running top-k across tiles), or
`losses.hard_bank_nt_xent`: a batch of 128 against a memory bank, the 4095 hardest
of its entries (Wang & Liu's paper recipe's loss).
speed: at 2N = --size views of D = 128, the jitted gradient of the loss
with respect to both views, dense and with each block size, timed round-robin in
one process (medians of --repeats after a warm-up; ratios to dense).
memory: each case IMPL:2N (IMPL = dense or blockB) in its own subprocess, which
compiles and runs forward + backward once and reports its peak resident memory
(ru_maxrss), so one case's allocations never count towards another's.
mesh: in a subprocess with --devices simulated CPU devices (XLA_FLAGS), the views
sharded over a ("data",) mesh: dense, blockwise without `mesh=` (XLA runs the
whole tiled loop on every device) and blockwise with it (each device its own
rows), timed round-robin; on one machine's cores this measures the total work.
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
NUM_HARD = 4095
LOSSES = ("nt_xent", "hard", "bank_hard")
# bank_hard: Wang & Liu's paper recipe's loss, the hard contrastive loss (4,095
# hardest) of a batch of 128 against a memory bank of 2N entries (the size argument).
BANK_BATCH = 128


def _views(n2):
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  z1 = jax.random.normal(k1, (n2 // 2, DIM))
  return z1, z1 + 0.3 * jax.random.normal(k2, (n2 // 2, DIM))


def _bank(size):
  bank = jax.random.normal(jax.random.PRNGKey(1), (size, DIM))
  indices = jax.random.permutation(jax.random.PRNGKey(2), size)[:BANK_BATCH]
  return bank, indices


def _grad_fn(block_size, name="nt_xent", mesh=None, bank=None):
  kw = {"mesh": mesh} if block_size is not None else {}

  def loss(z1, z2):
    if name == "bank_hard":
      return losses.hard_bank_nt_xent(
        z1, z2, *bank, temperature=TEMPERATURE, num_hard=NUM_HARD, block_size=block_size
      )
    if name == "hard":
      return losses.hard_nt_xent(
        z1, z2, temperature=TEMPERATURE, num_hard=NUM_HARD, block_size=block_size, **kw
      )
    return losses.nt_xent(z1, z2, temperature=TEMPERATURE, block_size=block_size, **kw)

  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def _block(impl: str):
  return None if impl == "dense" else int(impl.removeprefix("block"))


def speed(args):
  z1, z2 = _views(args.size)
  impls = ["dense"] + [f"block{b}" for b in args.blocks.split(",")]
  fns = {impl: _grad_fn(_block(impl), args.loss) for impl in impls}
  for fn in fns.values():
    jax.block_until_ready(fn(z1, z2))
  times = {impl: [] for impl in impls}
  for _ in range(args.repeats):
    for impl, fn in fns.items():
      t = time.perf_counter()
      jax.block_until_ready(fn(z1, z2))
      times[impl].append(time.perf_counter() - t)
  print(common.machine())
  print(f"{args.loss}, 2N = {args.size}, D = {DIM}, forward + backward, medians of {args.repeats}:")
  dense = statistics.median(times["dense"])
  result = {}
  for impl in impls:
    med = statistics.median(times[impl])
    result[impl] = med
    print(f"  {impl:>10}: {med * 1e3:9.1f} ms   x{med / dense:.2f} of dense")
  common.write_json(args.json, result)


def one_case(impl: str, n2: int, name: str):
  if name == "bank_hard":  # a batch of 128 against a bank of n2 entries
    z1, z2 = _views(2 * BANK_BATCH)
    loss, grads = _grad_fn(_block(impl), name, bank=_bank(n2))(z1, z2)
  else:
    z1, z2 = _views(n2)
    loss, grads = _grad_fn(_block(impl), name)(z1, z2)
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
      [sys.executable, __file__, "_case", impl, n2, args.loss],
      capture_output=True,
      text=True,
      check=False,
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


def mesh_case(size, block, repeats, name):
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P

  devices = jax.device_count()
  mesh = jax.make_mesh((devices,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  z1, z2 = (jax.device_put(z, NamedSharding(mesh, P("data"))) for z in _views(size))
  fns = {
    "dense": _grad_fn(None, name),
    "blockwise, no mesh": _grad_fn(block, name),
    "blockwise, mesh": _grad_fn(block, name, mesh),
  }
  for fn in fns.values():
    jax.block_until_ready(fn(z1, z2))
  times = {impl: [] for impl in fns}
  for _ in range(repeats):
    for impl, fn in fns.items():
      t = time.perf_counter()
      jax.block_until_ready(fn(z1, z2))
      times[impl].append(time.perf_counter() - t)
  print(json.dumps({impl: statistics.median(t) for impl, t in times.items()}))


def mesh(args):
  env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={args.devices}"}
  cmd = [sys.executable, __file__, "_mesh", str(args.size), str(args.block), str(args.repeats),
         args.loss]  # fmt: skip
  proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  print(common.machine())
  print(f"{args.loss}, 2N = {args.size}, block {args.block}, {args.devices} simulated devices, "
        f"forward + backward, medians of {args.repeats}:")  # fmt: skip
  for impl, med in result.items():
    print(f"  {impl:>20}: {med * 1e3:9.1f} ms   x{med / result['dense']:.2f} of dense")
  common.write_json(args.json, result)


def main():
  if len(sys.argv) == 5 and sys.argv[1] == "_case":
    one_case(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    return
  if len(sys.argv) == 6 and sys.argv[1] == "_mesh":
    mesh_case(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    return
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="mode", required=True)
  s = sub.add_parser("speed")
  s.add_argument("--size", type=int, default=8192)
  s.add_argument("--blocks", default="1024,2048,4096")
  s.add_argument("--repeats", type=int, default=7)
  s.add_argument("--loss", default="nt_xent", choices=LOSSES)
  s.add_argument("--json")
  m = sub.add_parser("memory")
  m.add_argument("--cases", default="dense:8192,block4096:8192,dense:16384,block4096:65536")
  m.add_argument("--loss", default="nt_xent", choices=LOSSES)
  m.add_argument("--json")
  g = sub.add_parser("mesh")
  g.add_argument("--devices", type=int, default=4)
  g.add_argument("--size", type=int, default=8192)
  g.add_argument("--block", type=int, default=1024)
  g.add_argument("--repeats", type=int, default=5)
  g.add_argument("--loss", default="nt_xent", choices=LOSSES)
  g.add_argument("--json")
  args = parser.parse_args()
  if args.mode == "speed":
    common.check_repeats(parser, args.repeats)
    speed(args)
  elif args.mode == "mesh":
    common.check_repeats(parser, args.repeats)
    mesh(args)
  else:
    memory(args)


if __name__ == "__main__":
  main()
