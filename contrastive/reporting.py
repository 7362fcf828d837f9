"""What every paper study's report shares: claims as data, report.md, figures with CSV.

A study (`contrastive.experiments.<name>`) judges the paper's claims on a sweep's
numbers and returns them as `Claim`s (statement, verdict, the numbers behind it);
`write_report` lays them out in WORKDIR/report.md beside the study's tables and
figures, or says the sweep is incomplete. Every figure is saved with a CSV of
exactly the numbers it plots (`save_figure`), so it can be redrawn or checked
without rerunning anything.
"""

import csv
import dataclasses
import io
import itertools
import json
import math
import os

import matplotlib

from contrastive import paths as storage
from contrastive import provenance

matplotlib.use("Agg")  # Headless: CI, TPU hosts and SSH sessions have no display.

INCOMPLETE = "The sweep is incomplete; claims are checked when every run has finished."


@dataclasses.dataclass(frozen=True)
class Claim:
  """One of a paper's claims, judged on our numbers.

  Attributes:
    statement: the claim, as the report states it.
    holds: the verdict against the noise: a difference counts only where it exceeds
      twice its standard error (`NOISE_SE`).
    evidence: the numbers behind the verdict, as the report prints them.
    numbers: the same numbers as data (for tests and notebooks).
    strict: the strict reading, every difference taken at face value; None where
      no noise applies (an analysis in closed form): `holds` is then the verdict.
    noise: what the noise was estimated from ("3 seeds", "binomial, 2000 test
      images"), or why it could not be ("one seed: noise unknown").
  """

  statement: str
  holds: bool
  evidence: str
  numbers: dict = dataclasses.field(default_factory=dict)
  strict: bool | None = None
  noise: str = ""

  def markdown(self) -> str:
    if self.strict is None:
      return f"{self.statement}: {verdict(self.holds)}. {self.evidence}"
    basis = f"; {self.noise}" if self.noise else ""
    return (
      f"{self.statement}: {verdict(self.holds)} (strict reading: {verdict(self.strict)}"
      f"{basis}). {self.evidence}"
    )


@dataclasses.dataclass(frozen=True)
class Report:
  """A written report: its study, claims (none while incomplete) and files."""

  experiment: str
  claims: tuple[Claim, ...]
  complete: bool
  paths: dict[str, str]


def verdict(holds: bool) -> str:
  return "**holds**" if holds else "**does not hold**"


def write_csv(path: str, header, rows) -> None:
  """Writes `rows` (an iterable of sequences) under `header` to `path`."""
  text = io.StringIO(newline="")
  writer = csv.writer(text)
  writer.writerow(header)
  writer.writerows(rows)
  storage.write_text(path, text.getvalue())


def pyplot():
  """matplotlib.pyplot, imported on first use (its ~0.7 s would otherwise be in every
  `run.py`, a config error's included, through `jobs` and `plot`); headless (Agg)."""
  from matplotlib import pyplot as plt  # noqa: PLC0415

  return plt


def save_figure(fig, path: str, *, header=None, rows=None, dpi: int = 150) -> str:
  """Saves `fig` as the PNG `path` and, given `header` and `rows`, the plotted numbers
  beside it (the same name with .csv). Closes the figure; returns `path`."""
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, format="png", dpi=dpi)
  storage.write_bytes(path, png.getvalue())
  pyplot().close(fig)
  if header is not None:
    write_csv(os.path.splitext(path)[0] + ".csv", header, rows)
  return path


def markdown_table(header, rows) -> list[str]:
  """A markdown table's lines: `header` cells, then one line per row of cells."""
  return [
    "| " + " | ".join(str(h) for h in header) + " |",
    "|" + "---|" * len(header),
    *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
  ]


def sequence(values, fmt: str = "{:.3f}") -> str:
  """ "a -> b -> c": a series of numbers as the claims quote them."""
  return " -> ".join(fmt.format(v) for v in values)


def write_report(
  workdir: str,
  experiment: str,
  *,
  title: str,
  intro: str,
  tables,
  claims,
  figures,
  paths: dict[str, str],
  notes=(),
  numbered: bool = False,
  seeds: int | None = None,
  entries=(),
) -> Report:
  """Writes WORKDIR/report.md and returns the `Report`.

  Args:
    workdir: the sweep's directory.
    experiment: the study's name.
    title: the report's heading.
    intro: the paragraph under it (dataset, model, settings, what is shown).
    tables: markdown lines of the study's tables.
    claims: the judged claims, or None while the sweep is incomplete.
    figures: (caption, file name in WORKDIR) of each figure, shown at the end.
    paths: the files written so far, by name; report.md is added.
    notes: paragraphs after the claims (e.g. collapsed runs).
    numbered: number the claims as the paper does (1., 2., ...) instead of bullets.
    seeds: seeds per run (the fewest, if they differ); None for a study without
      training runs.
    entries: the sweep's runs: their provenance is listed at the end, with a
      warning when they come from different code versions or devices.
  """
  if seeds is not None and seeds > 1:
    intro += (
      f" Each figure is the mean ± standard deviation over {seeds} seeds; a difference "
      f"counts when it exceeds {NOISE_SE:g} standard errors."
    )
  elif seeds == 1:
    intro += " One seed per run: rerun with seeds=N for the spread."
  lines = [f"# {title}", "", intro, "", *tables, "", "## Claims, on our numbers", ""]
  if claims is None:
    lines.append(INCOMPLETE)
  else:
    for i, claim in enumerate(claims, 1):
      lines.append((f"{i}. " if numbered else "- ") + claim.markdown())
  for note in notes:
    lines += ["", note]
  for caption, name in figures:
    lines += ["", f"![{caption}]({name})"]
  origin = provenance.report_lines(entries)
  if origin:
    lines += ["", *origin]
  lines.append("")
  paths = {**paths, "report": os.path.join(workdir, "report.md")}
  storage.write_text(paths["report"], "\n".join(lines))
  return Report(experiment, tuple(claims or ()), claims is not None, paths)


# ----------------------------------------------------------------------------------
# Seeds and noise: runs repeated with different seeds, claims judged against the noise.

# What each figure of a run's results.json means and which way is better: a finished
# run's console summary (`jobs.print_results`) and RESULTS.md's quickstart table.
MEANINGS = {
  "knn_accuracy": "kNN accuracy on the test split (eval.knn_k neighbours); higher is better",
  "linear_accuracy": "linear probe accuracy on the test split; higher is better",
  "online_linear_accuracy": "the online linear probe's, trained alongside; higher is better",
  "pixel_knn_accuracy": "kNN accuracy on the raw pixels: the baseline to beat",
  "uniformity": "-L_unif of the test features; higher: more uniform (at most about 4)",
  "tolerance": "mean similarity of same-class test features; higher: classes tighter",
  "alignment": "mean squared distance of two views' features; lower: views closer",
  "final_loss": "the training loss at the last step",
  "wall_time_s": "seconds, the whole run",
}

# A difference counts when it exceeds this many standard errors.
NOISE_SE = 2.0


@dataclasses.dataclass(frozen=True)
class Value:
  """A figure over seeds: its mean, spread (standard deviation) and standard error.

  With one seed the spread is unknown (NaN) and so is the standard error, unless a
  sampling model gives it (an accuracy on n test images: sqrt(p (1 - p) / n)).
  """

  mean: float
  spread: float
  se: float
  seeds: int

  def text(self, fmt: str = "{:.3f}") -> str:
    """ "0.812" with one seed, "0.812 ± 0.004" (mean ± spread) with several."""
    if self.seeds < 2:
      return fmt.format(self.mean)
    return f"{fmt.format(self.mean)} ± {fmt.format(self.spread)}"


def measure(values, *, test_examples: int | None = None, scale: float = 1.0) -> Value:
  """The `Value` of per-seed figures `values`; `test_examples` gives an accuracy's
  binomial standard error when there is one seed (`scale`: 100 for a percentage)."""
  values = [float(v) for v in values]
  n = len(values)
  mean = sum(values) / n
  if n > 1:
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Value(mean, spread, spread / math.sqrt(n), n)
  se = math.nan
  if test_examples:
    p = mean / scale
    se = scale * math.sqrt(max(p * (1 - p), 0.0) / test_examples)
  return Value(mean, math.nan, se, 1)


def seed_count(groups) -> int:
  """The fewest seeds of any run of `replicas` groups (1 for none)."""
  return min((len(g["runs"]) for g in groups), default=1)


def replicas(entries) -> list[dict]:
  """Sweep entries grouped into one per run, whatever its seed, in order.

  Each group is the first entry (name, overrides, config) with `runs`, the results
  of every seed of that run; a study measures its figures over them (`measure`).
  """
  groups: dict[str, dict] = {}
  for e in entries:
    key = json.dumps({k: v for k, v in (e["config"] or {}).items() if k != "seed"}, sort_keys=True)
    groups.setdefault(key, {**e, "runs": []})["runs"].append(e["results"])
  return list(groups.values())


def over_seeds(group: dict, figure, *, accuracy: bool = False, scale: float = 1.0) -> Value:
  """`scale * figure(results)` of each seed of a run (a `replicas` group), as a `Value`.

  With `accuracy`, a single seed's standard error is the binomial one on the run's
  test images.
  """
  runs = group["runs"]
  n_test = min(r.get("test_examples", 0) for r in runs) if accuracy else None
  return measure([scale * figure(r) for r in runs], test_examples=n_test, scale=scale)


def accuracy(group: dict, key: str = "linear_accuracy", *, scale: float = 1.0) -> Value:
  """An accuracy of a run over its seeds (`scale` 100 for %), with the binomial standard
  error of its test images when there is one seed."""
  return over_seeds(group, lambda r: r[key], accuracy=True, scale=scale)


def value_range(values) -> tuple[float, tuple[float, float]]:
  """(max - min of the means of `values`, the standard errors of those two)."""
  hi = max(values, key=lambda v: v.mean)
  lo = min(values, key=lambda v: v.mean)
  return hi.mean - lo.mean, (hi.se, lo.se)


def noise_basis(values) -> str:
  """What the standard errors of `values` rest on, for a claim's verdict."""
  values = list(values)
  seeds = min(v.seeds for v in values)
  if seeds > 1:
    return f"noise: {NOISE_SE:g} standard errors over {seeds} seeds"
  if all(math.isfinite(v.se) for v in values):
    return f"noise: {NOISE_SE:g} binomial standard errors (one seed)"
  return "one seed: noise unknown, the strict reading stands"


def exceeds(diff: float, ses) -> bool:
  """Whether `diff` is positive by more than the noise: NOISE_SE standard errors of a
  quantity whose terms have standard errors `ses` (independent). Unknown noise (one
  seed, no sampling model) makes any positive difference count, as strictly read."""
  se = math.sqrt(sum(s**2 for s in ses))
  return diff > (NOISE_SE * se if math.isfinite(se) else 0.0)


def difference(a: Value, b: Value) -> int:
  """+1 if b exceeds a by more than the noise, -1 if it falls short by more, else 0."""
  if exceeds(b.mean - a.mean, (a.se, b.se)):
    return 1
  return -1 if exceeds(a.mean - b.mean, (a.se, b.se)) else 0


def trend(values, direction: int) -> tuple[bool, bool]:
  """(strict, against the noise) readings of "the values move in `direction` (+1:
  rise, -1: fall) along the grid".

  Strict: no step moves the other way. Against the noise: no step moves the other
  way by more than the noise, and the last value is beyond the first by more than
  the noise (a difference inside the noise never counts as a trend).
  """
  values = list(values)
  strict = all((b.mean - a.mean) * direction >= 0 for a, b in itertools.pairwise(values))
  no_reversal = all(difference(a, b) != -direction for a, b in itertools.pairwise(values))
  return strict, no_reversal and difference(values[0], values[-1]) == direction
