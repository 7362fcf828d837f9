"""BENCHMARKS.md's tables from the committed JSON files in benchmarks/results/.

  python benchmarks/report.py          # rewrites every generated table in BENCHMARKS.md
  python benchmarks/report.py check    # exits 1 where a table differs from its JSON

A table is generated where BENCHMARKS.md holds a block

  <!-- benchmark: NAME.json -->
  ...
  <!-- /benchmark -->

from benchmarks/results/NAME.json (its rows, and the command, machine and date the file
records) in the layout `TABLES` gives for it, so no figure of a benchmark that writes
JSON is typed by hand. A benchmark writes its JSON with `--json PATH`
(`common.write_json`, which records the command, date and code version).
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BLOCK = re.compile(r"(<!-- benchmark: (\S+?) -->\n)(.*?)(<!-- /benchmark -->)", re.S)


def _ms(v):
  return f"{v:,.2f}"


def _ratio(v):
  return f"{v:.3f}"


_LOSS_NAMES = {
  "nt_xent": "NT-Xent",
  "hard_contrastive": "hard contrastive (alpha = 0.0819)",
  "generalized_swd": "generalized, SWD Gaussian",
}


def _ours(rows, suffix=""):
  """Our row (the first `contrastive` one), or the one whose name ends with `suffix`."""
  ours = [r for r in rows if r["impl"].startswith("contrastive")]
  return next((r for r in ours if r["impl"].endswith(suffix)), None) if suffix else ours[0]


def _augmentation(r):
  said = r["augmentation_in_step"]
  return said if isinstance(said, str) else "yes" if said else "no"


def _unaugmented_ratio(r, rows):
  """Ours without augmentation (`augment=none`) over this row, where the file has it."""
  plain = _ours(rows, ", augment=none")
  return _ratio(plain["step_ms"] / r["step_ms"]) if plain else "-"


_PEER = [
  ("implementation", lambda r, _: r["impl"]),
  ("step (ms)", lambda r, _: _ms(r["step_ms"])),
  ("images/s (two views each)", lambda r, _: f"{r['images_per_s']:,.1f}"),
  ("augmentation in the step", lambda r, _: _augmentation(r)),
  ("ours / this", lambda r, rows: _ratio(_ours(rows)["step_ms"] / r["step_ms"])),
  ("ours, augment=none / this", _unaugmented_ratio),
]
# File name -> the table's columns: (header, (row, all rows) -> cell text).
TABLES = {
  "losses.json": [
    ("loss", lambda r, _: _LOSS_NAMES.get(r["loss"], r["loss"])),
    ("2N", lambda r, _: f"{r['2N']:,}"),
    ("ours (ms)", lambda r, _: _ms(r["median_ms"]["ours"])),
    ("plain jnp (ms)", lambda r, _: _ms(r["median_ms"]["plain_jnp"])),
    ("ours / plain jnp", lambda r, _: _ratio(r["ratio_ours_to"]["plain_jnp"])),
  ],
  "lightly_nt_xent.json": [
    ("2N", lambda r, _: f"{r['2N']:,}"),
    ("lightly NTXentLoss (ms)", lambda r, _: _ms(r["lightly_ms"])),
    ("ours (ms)", lambda r, _: _ms(r["ours_ms"])),
    ("ours / lightly", lambda r, _: _ratio(r["ours_over_lightly"])),
  ],
  "peer_torch_resnet18_w16_b64.json": _PEER,
  "peer_torch_resnet18_w64_b64.json": _PEER,
  "peer_torch_convn_b64.json": _PEER,
  "bank_memory.json": [
    ("kernel", lambda r, _: r["impl"]),
    ("bank entries", lambda r, _: f"{r['n2']:,}"),
    ("peak resident (GiB)", lambda r, _: f"{r['peak_gib']:.2f}"),
    ("loss", lambda r, _: f"{r['loss']:.6f}"),
  ],
}


def table(name: str, data) -> str:
  """The markdown of benchmarks/results/NAME's rows, with what the file records of its
  command, machine and date."""
  if name not in TABLES:
    raise ValueError(f"No layout for {name} in benchmarks/report.py TABLES.")
  rows = data["rows"] if isinstance(data, dict) else data
  meta = data if isinstance(data, dict) else {}
  columns = TABLES[name]
  lines = [
    "| " + " | ".join(h for h, _ in columns) + " |",
    "|" + "---|" * len(columns),
    *("| " + " | ".join(cell(r, rows) for _, cell in columns) + " |" for r in rows),
  ]
  said = [
    f"{label}: {meta[key]}"
    for key, label in (
      ("command", "command"),
      ("machine", "machine"),
      ("date", "date"),
      ("code", "code"),
    )  # fmt: skip
    if meta.get(key)
  ]
  source = f"From `benchmarks/results/{name}`" + (f" ({'; '.join(said)})" if said else "")
  return "\n".join(lines) + f"\n\n{source}.\n"


def render(text: str, results_dir: str) -> str:
  """`text` (BENCHMARKS.md) with every generated block filled from `results_dir`."""

  def fill(match):
    name = match.group(2)
    path = os.path.join(results_dir, name)
    if not os.path.exists(path):
      raise FileNotFoundError(f"BENCHMARKS.md names {path}, which does not exist.")
    with open(path) as f:
      data = json.load(f)
    return match.group(1) + table(name, data) + match.group(4)

  return BLOCK.sub(fill, text)


def main(argv) -> int:
  path = os.path.join(ROOT, "BENCHMARKS.md")
  with open(path) as f:
    text = f.read()
  try:
    new = render(text, os.path.join(HERE, "results"))
  except (FileNotFoundError, ValueError, KeyError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if argv[1:] == ["check"]:
    if new != text:
      print(f"{path} differs from benchmarks/results/: run python benchmarks/report.py",
            file=sys.stderr)  # fmt: skip
      return 1
    print(f"{path}'s generated tables agree with benchmarks/results/.")
    return 0
  with open(path, "w") as f:
    f.write(new)
  print(f"wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
