"""Sweeps: a grid of training runs declared in a config, each in its own subdirectory.

A config declares its runs in `sweep.runs`, a tuple of override strings such as
"loss.name=hard_contrastive,loss.temperature=0.7" (`config.grid` builds them as a
product of axes; `config.apply` parses them, as it parses every override). `run`
trains every run whose WORKDIR/NAME/results.json does not exist yet (a run
interrupted mid-way resumes from its checkpoints) and rewrites WORKDIR/sweep.json
after each one, so an interrupted sweep re-run with the same command finishes only
the missing runs. sweep.json holds the sweep's config and one entry per finished
run; `read` loads it back (`contrastive.experiments.write_report` reports from it).

With `sweep.population = True`, runs that differ only in `loss.temperature` train
together as one vmapped program (`population.train_population`), sharing every batch;
their checkpoint lives in WORKDIR/populations/NAME.

Several processes may run the same sweep command at once (on one machine or on
several sharing the workdir; e.g. a few on one large GPU): each run is trained by the
process that takes its directory's lock (`locking.WorkdirLock`), and the others
skip it, so every run trains once. Each process writes sweep.json and the report of
what has finished when it has nothing left to claim; the last to finish writes the
complete one. (Within one multi-process job, `jax.distributed`, every process trains
every run together instead.)
"""

import json
import os

import jax

from contrastive import config as config_lib
from contrastive import locking
from contrastive import paths
from contrastive import population as population_lib
from contrastive import train

SWEEP_FILE = "sweep.json"


def run_name(overrides: str) -> str:
  """The run's subdirectory: its overrides, '/' made safe."""
  return overrides.replace("/", "_") or "base"


def expand(config) -> list[tuple[str, str, object]]:
  """(name, overrides, config) of every run the sweep declares, in order.

  Raises:
    config.ConfigError: a run's overrides name a key that does not exist, or two
      runs are the same.
  """
  runs = [(run_name(o), o, config_lib.with_overrides(config, o)) for o in config.sweep.runs]
  names = [r[0] for r in runs]
  if len(set(names)) != len(names):
    raise config_lib.ConfigError(
      "sweep.runs has duplicate entries; each run needs distinct overrides."
    )
  return runs


def _groups(runs, population: bool):
  """Lists of runs trained together: one each, or per population (same but for tau)."""
  if not population:
    return [[r] for r in runs]
  groups: dict[str, list] = {}
  for r in runs:
    key = json.dumps(population_lib.without_temperature(r[2]), sort_keys=True, default=str)
    groups.setdefault(key, []).append(r)
  return list(groups.values())


def _finished(workdir, name) -> bool:
  return paths.exists(paths.path(workdir, name, "results.json"))


def finished(workdir: str, runs) -> list[str]:
  """The names of `runs` (from `expand`) that have their results in `workdir`."""
  return [name for name, _, _ in runs if _finished(workdir, name)]


def summary(workdir: str, runs) -> list[dict]:
  """One entry per finished run: its name, overrides, results and config."""
  entries = []
  for name, overrides, _ in runs:
    if _finished(workdir, name):
      results = json.loads(paths.read_text(paths.path(workdir, name, "results.json")))
      run_config = results.pop("config", None)
      entries.append(
        {"name": name, "overrides": overrides, "results": results, "config": run_config}
      )
  return entries


def _write_summary(workdir, config, runs) -> list[dict]:
  entries = summary(workdir, runs)
  saved = {"declared_runs": len(runs), "runs": entries, "config": config.to_dict()}
  # Written whole (never a half-written sweep.json), on a disk or in a bucket.
  paths.write_text(paths.path(workdir, SWEEP_FILE), json.dumps(saved, indent=1, default=str))
  return entries


def read(workdir: str) -> tuple[object, list[dict]]:
  """(config, entries) of the sweep in WORKDIR/sweep.json.

  The config is the sweep's own, merged over today's base (`config.from_saved`), so
  sweeps written by older versions load; those from before sweep.json held it take
  their first run's.
  """
  path = paths.path(workdir, SWEEP_FILE)
  if not path.exists():
    raise FileNotFoundError(f"No {SWEEP_FILE} in {workdir}: not a sweep's directory.")
  saved = json.loads(path.read_text())
  entries = saved["runs"]
  config = saved.get("config") or (entries[0]["config"] if entries else None)
  if config is None:
    raise ValueError(f"{path} has no finished run and no config: nothing to report.")
  return config_lib.from_saved(config), entries


def refresh(workdir: str) -> tuple[object, list[dict]]:
  """Rewrites WORKDIR/sweep.json from its runs' results.json (the runs' own files are
  the record; sweep.json is their summary) and returns (config, entries) as `read`."""
  config, _ = read(workdir)
  entries = _write_summary(workdir, config, expand(config))
  return config, entries


def _run_dir(workdir, group) -> str:
  """The directory whose lock a group's training holds: its run's, or its population's."""
  if len(group) > 1:
    return os.path.join(workdir, "populations", "+".join(n for n, _, _ in group)[:200])
  return os.path.join(workdir, group[0][0])


def _shared() -> bool:
  """Whether runs held by another process are skipped: yes, unless this process is
  one of a multi-process job (its processes must all train the same runs)."""
  return jax.process_count() == 1


def run(
  config, workdir: str, *, check=None, on_result=None, on_start=None, on_skip=None
) -> list[dict]:
  """Trains the runs of `config.sweep` that have no results yet; writes sweep.json.

  Args:
    config: a training config with a non-empty `sweep.runs`.
    workdir: the sweep's directory (one subdirectory per run).
    check: called on every run's config before any training (a config check).
    on_result: called with (name, results) after each run finishes.
    on_start: called with (name, k, n) as the k-th of the n declared runs starts
      (with the other members of its population, if any).
    on_skip: called with (name, k, n, holder) for a run another process is training.

  Returns:
    sweep.json's entries: every finished run, in declaration order.
  """
  runs = expand(config)
  if check is not None:
    for _, _, run_config in runs:
      check(run_config)
  paths.makedirs(workdir)
  position = {name: k for k, (name, _, _) in enumerate(runs, 1)}

  def skipped(group, holder):
    for name, _, _ in group:
      if on_skip is not None:
        on_skip(name, position[name], len(runs), holder)

  for group in _groups(runs, config.sweep.population):
    if all(_finished(workdir, name) for name, _, _ in group):
      continue
    run_dir = _run_dir(workdir, group)
    try:  # claimed before its data load: a run another process holds costs nothing
      claim = locking.WorkdirLock(run_dir) if _shared() else None
    except locking.WorkdirBusyError as busy:
      skipped(group, busy.holder)
      continue
    try:
      if all(_finished(workdir, name) for name, _, _ in group):
        continue  # finished by another process since the first look
      for name, _, _ in group:
        if on_start is not None:
          on_start(name, position[name], len(runs))
      for name, _, _ in group:
        paths.makedirs(paths.path(workdir, name))
      if len(group) > 1:  # a population trains, and finishes, as one
        members = [(os.path.join(workdir, n), c) for n, _, c in group]
        results = population_lib.train_population(group[0][2], run_dir, members, lock=claim)
      else:
        results = [train.train_and_evaluate(group[0][2], run_dir, lock=claim)]
    finally:
      if claim is not None:
        claim.release()
    _write_summary(workdir, config, runs)
    if on_result is not None:
      for (name, _, _), r in zip(group, results, strict=True):
        on_result(name, r)
  return _write_summary(workdir, config, runs)
