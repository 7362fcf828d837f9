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
import os

import matplotlib

matplotlib.use("Agg")  # Headless: CI, TPU hosts and SSH sessions have no display.
from matplotlib import pyplot as plt  # noqa: E402

INCOMPLETE = "The sweep is incomplete; claims are checked when every run has finished."


@dataclasses.dataclass(frozen=True)
class Claim:
  """One of a paper's claims, judged on our numbers.

  Attributes:
    statement: the claim, as the report states it.
    holds: the verdict on our numbers.
    evidence: the numbers behind the verdict, as the report prints them.
    numbers: the same numbers as data (for tests and notebooks).
  """

  statement: str
  holds: bool
  evidence: str
  numbers: dict = dataclasses.field(default_factory=dict)

  def markdown(self) -> str:
    return f"{self.statement}: {verdict(self.holds)}. {self.evidence}"


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
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def save_figure(fig, path: str, *, header=None, rows=None, dpi: int = 150) -> str:
  """Saves `fig` as the PNG `path` and, given `header` and `rows`, the plotted numbers
  beside it (the same name with .csv). Closes the figure; returns `path`."""
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)
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
  """
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
  lines.append("")
  paths = {**paths, "report": os.path.join(workdir, "report.md")}
  with open(paths["report"], "w") as f:
    f.write("\n".join(lines))
  return Report(experiment, tuple(claims or ()), claims is not None, paths)
