"""Forward + backward time of lightly's NT-Xent against ours, in one run.

  python benchmarks/peer_lightly.py [--sizes 8192] [--repeats 7] [--ours PYTHON]
                                    [--json out.json]

Run with a Python that has PyTorch and lightly (`pip install torch lightly`; neither is a
dependency of this project). For 2N in --sizes views of dimension D = 128 at tau = 0.2,
times the gradient of lightly's `NTXentLoss` (lightly's SimCLR loss: in-batch negatives,
cosine similarity) with respect to both views, median of --repeats after a warm-up,
on the CPU with PyTorch's default threads. With --ours, then runs
`benchmarks/losses.py --sizes ...` under PYTHON (a Python with this project) on the
same views' shapes and reports our `nt_xent`'s median beside lightly's and their ratio.
Both losses are checked equal on the same inputs by tests/test_peers.py.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import common  # noqa: E402


def lightly_ms(two_n: int, repeats: int, dim: int = 128) -> float:
  from lightly.loss import NTXentLoss  # noqa: PLC0415
  import torch  # noqa: PLC0415

  torch.manual_seed(two_n)
  z1 = torch.randn(two_n // 2, dim)
  z2 = (z1 + 0.3 * torch.randn(two_n // 2, dim)).requires_grad_(True)
  z1.requires_grad_(True)
  loss_fn = NTXentLoss(temperature=0.2)

  def step():
    z1.grad = z2.grad = None
    loss_fn(z1, z2).backward()

  step()  # warm-up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e3


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="8192")
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--ours", default=None, help="a Python with this project, to time ours")
  parser.add_argument("--json", default=None)
  args = parser.parse_args()
  if args.repeats < 5:
    parser.error("--repeats must be >= 5 for a meaningful median.")
  try:
    import lightly  # noqa: F401, PLC0415
    import torch
  except ImportError:
    sys.exit("benchmarks/peer_lightly.py needs PyTorch and lightly: pip install torch lightly")
  sizes = [int(s) for s in args.sizes.split(",")]
  rows = [{"2N": n, "lightly_ms": round(lightly_ms(n, args.repeats), 2)} for n in sizes]
  machine = f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores"
  if args.ours:
    with tempfile.TemporaryDirectory() as tmp:
      out = os.path.join(tmp, "ours.json")
      subprocess.run(
        [args.ours, "benchmarks/losses.py", "--sizes", args.sizes, "--repeats",
         str(args.repeats), "--json", out],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
      )  # fmt: skip
      ours = json.load(open(out))
    machine += f"; ours: {ours['machine']}"
    for row in rows:
      nt = next(r for r in ours["rows"] if r["loss"] == "nt_xent" and r["2N"] == row["2N"])
      row["ours_ms"] = nt["median_ms"]["ours"]
      row["ours_over_lightly"] = round(row["ours_ms"] / row["lightly_ms"], 3)
  for row in rows:
    print(json.dumps(row))
  common.write_json(args.json, {"machine": machine, "rows": rows})


if __name__ == "__main__":
  main()
