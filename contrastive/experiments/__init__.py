"""The paper studies, one module each, found by name.

Each module `contrastive.experiments.<name>` holds everything of its study: the
published numbers (once), the grid of runs at each scale (`get_config(arg)`, the
config a `configs/experiments/<name>.py` recipe returns, built by `study_config`),
the paper's claims judged on a sweep's numbers (`claims`), and the report writer
(`report(workdir, entries, config)`, which returns a `reporting.Report`).

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

from contrastive import config as config_lib
from contrastive import logs
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


def study_config(arg: str | None, *, scales: dict, runs, report: str, own=()):
  """A paper study's config: the sweep of `runs` at a scale, with its report.

  Args:
    arg: "scale=NAME" (default small), "seeds=N" (default 1) and any overrides
      ("dataset=stl10", "epochs=30", full keys too), applied last.
    scales: scale name -> function returning that scale's base config.
    runs: the sweep's override strings, or a function of the scale's config (after
      the overrides) and the study's own arguments (`own`) returning them.
    report: the study's name (`contrastive.experiments.names()`).
    own: argument names the study reads itself (e.g. local_separation's `loss`);
      their values are passed to `runs`, not applied to the config.

  With seeds=N every run is repeated with seeds seed, seed + 1, ..., seed + N - 1
  (the first keeps its name, so a finished one-seed sweep is extended, not redone);
  reports then give each figure's mean and spread and judge claims against the noise.
  """
  scale, seeds, mine, rest = "small", "1", {}, []
  for key, value in config_lib.parse(arg):
    if key == "scale":
      scale = value
    elif key == "seeds":
      seeds = value
    elif key in own:
      mine[key] = value
    else:
      if key == "seed":  # legal (every run's first seed), but seeds=N is what studies take
        logs.warn(f"seed={value} sets the seed every run starts from; seeds={value} would "
                  f"repeat each run with {value} seeds.")  # fmt: skip
      rest.append((key, value))
  if scale not in scales:
    raise config_lib.ConfigError(f"Unknown scale {scale!r}; valid: {', '.join(scales)}.")
  if not seeds.isdigit() or int(seeds) < 1:
    raise config_lib.ConfigError(f"seeds={seeds}: expected a whole number of seeds >= 1.")
  c = config_lib.apply(scales[scale](), rest)
  grid_runs = tuple(runs(c, **mine) if callable(runs) else runs)
  c.sweep.runs = tuple(
    ",".join(filter(None, (o, f"seed={c.seed + s}" if s else "")))
    for s in range(int(seeds))
    for o in grid_runs
  )
  c.sweep.report = report
  return c
