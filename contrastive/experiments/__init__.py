"""The paper studies, one module each, found by name.

Each module `contrastive.experiments.<name>` holds everything of its study: the
published numbers (once), the grid of runs at each scale (`get_config(arg)`, the
config a `configs/experiments/<name>.py` recipe returns), the paper's claims judged
on a sweep's numbers (`claims`), and the report writer (`report(workdir, entries,
config)`, which returns a `reporting.Report`).

Scales (`scale=` in a study's argument): `latent`, the latent test-bed
(`contrastive.data.latent`, `recipes.latent`: an MLP on generated vectors, 1,000
steps a run, seconds each), a study with seeds=5 in about 10 minutes on 2 CPU cores;
`small`, at most 30 minutes on 2 CPU cores on the embedded data (`recipes.small`);
`medium`, ResNet-18 on the CIFAR-like `objects` (`recipes.medium`; about 50 s a
run, at most 13 minutes a study, on one H100: BENCHMARKS.md); `paper`, the published
settings. `seeds=N` repeats every run.

  from contrastive import experiments
  experiments.names()                      # every study
  study = experiments.get("randbit")       # its module
  experiments.write_report(WORKDIR)        # report.md of a finished sweep directory
"""

import importlib
import pkgutil

from contrastive import sweep


def names() -> tuple[str, ...]:
  """Every study's name: the modules of this package."""
  return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)))


def get(name: str):
  """The study module `name`; ValueError listing the valid names for any other."""
  if name not in names():
    raise ValueError(f"Unknown experiment {name!r}; valid: {', '.join(names())}.")
  return importlib.import_module(f"{__name__}.{name}")


def write_report(workdir: str, name: str | None = None):
  """Writes the report of the finished (or partly finished) sweep in `workdir`.

  Args:
    workdir: a sweep's directory (its sweep.json and run subdirectories).
    name: the study; default: the one the sweep's config names (sweep.report).

  Returns:
    The `reporting.Report`.
  """
  config, entries = sweep.read(workdir)
  return get(name or config.sweep.report).report(workdir, entries, config)
