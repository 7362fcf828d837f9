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

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402
from contrastive import probes  # noqa: E402
from contrastive.data import embedded  # noqa: E402
from contrastive.data import objects  # noqa: E402

NAMES = ("shapes", "shapes_colour", "digits", "objects", "objects100")


def pixel_knn(xtr, ytr, xte, yte, k) -> float:
  """Raw-pixel weighted kNN accuracy: the pixels in [0, 1] as features."""
  flat = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
  return probes.knn_accuracy(flat(xtr), ytr, flat(xte), yte, num_classes=k)


def measure(name: str) -> str:
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
