"""Sweeps: a grid of training runs declared in a config, each in its own subdirectory.

A config declares its runs in `sweep.runs`, a tuple of override strings such as
"loss.name=hard_contrastive,loss.temperature=0.7" (full config keys, comma-
separated); `grid` builds them as a product of axes. `run` trains every run whose
WORKDIR/NAME/results.json does not exist yet (a run interrupted mid-way resumes
from its checkpoints) and rewrites WORKDIR/sweep.json after each one, so an
interrupted sweep re-run with the same command finishes only the missing runs.

With `sweep.population = True`, runs that differ only in `loss.temperature` train
together as one vmapped program (`train.train_population`), sharing every batch;
their checkpoint lives in WORKDIR/populations/NAME.
"""

import itertools
import json
import os

import jax

from contrastive import report
from contrastive import train

SWEEP_FILE = "sweep.json"


def grid(**axes) -> tuple[str, ...]:
  """Override strings for the product of `axes` (section__field=values).

  Example: grid(loss__temperature=(0.1, 0.2), loss__name=("contrastive",)) ->
  ("loss.temperature=0.1,loss.name=contrastive", "loss.temperature=0.2,...").
  """
  keys = [k.replace("__", ".") for k in axes]
  return tuple(
    ",".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
    for values in itertools.product(*axes.values())
  )


def parse_value(key: str, value: str, current):
  """The text `value` for config field `key`, typed like its `current` value."""
  if isinstance(current, bool):
    if value not in ("True", "False"):
      raise ValueError(f"Sweep override {key}={value}: expected True or False.")
    return value == "True"
  if current is None:  # an unset placeholder: a number if it reads as one
    try:
      return float(value)
    except ValueError:
      return value
  return type(current)(value)


def apply_overrides(config, overrides: str):
  """A copy of `config` with "section.field=value,..." applied (typed like the field)."""
  run_config = config.copy_and_resolve_references()
  run_config.unlock()
  run_config.sweep.runs = ()
  run_config.lock()
  for item in filter(None, overrides.split(",")):
    key, sep, value = item.partition("=")
    section, dot, field = key.partition(".")
    if not sep or not dot or section not in run_config or field not in run_config[section]:
      raise ValueError(f"Bad sweep override {item!r}: use section.field=value with existing keys.")
    run_config[section][field] = parse_value(key, value, run_config[section][field])
  return run_config


def run_name(overrides: str) -> str:
  """The run's subdirectory: its overrides, '/' made safe."""
  return overrides.replace("/", "_") or "base"


def expand(config) -> list[tuple[str, str, object]]:
  """(name, overrides, config) of every run the sweep declares, in order."""
  runs = [(run_name(o), o, apply_overrides(config, o)) for o in config.sweep.runs]
  names = [r[0] for r in runs]
  if len(set(names)) != len(names):
    raise ValueError("sweep.runs has duplicate entries; each run needs distinct overrides.")
  return runs


def _groups(runs, population: bool):
  """Lists of runs trained together: one each, or per population (same but for tau)."""
  if not population:
    return [[r] for r in runs]
  groups: dict[str, list] = {}
  for r in runs:
    key = json.dumps(train.without_temperature(r[2]), sort_keys=True, default=str)
    groups.setdefault(key, []).append(r)
  return list(groups.values())


def _finished(workdir, name) -> bool:
  return os.path.exists(os.path.join(workdir, name, "results.json"))


def summary(workdir: str, runs) -> list[dict]:
  """One entry per finished run: its name, overrides, results and config."""
  entries = []
  for name, overrides, _ in runs:
    if _finished(workdir, name):
      with open(os.path.join(workdir, name, "results.json")) as f:
        results = json.load(f)
      run_config = results.pop("config", None)
      entries.append(
        {"name": name, "overrides": overrides, "results": results, "config": run_config}
      )
  return entries


def _write_summary(workdir, runs) -> list[dict]:
  entries = summary(workdir, runs)
  tmp = os.path.join(workdir, SWEEP_FILE + ".tmp")
  with open(tmp, "w") as f:
    json.dump({"declared_runs": len(runs), "runs": entries}, f, indent=1)
  os.replace(tmp, os.path.join(workdir, SWEEP_FILE))  # never a half-written sweep.json
  return entries


def run(config, workdir: str, *, check=None, on_result=None) -> list[dict]:
  """Trains the runs of `config.sweep` that have no results yet; writes sweep.json.

  Args:
    config: a training config with a non-empty `sweep.runs`.
    workdir: the sweep's directory (one subdirectory per run).
    check: called on every run's config before any training (a config check).
      `sweep.report`, when set, names the writer of WORKDIR/report.md
      (`report.REPORTS`), run once every run has finished.
    on_result: called with (name, results) after each run finishes.

  Returns:
    sweep.json's entries: every finished run, in declaration order.
  """
  runs = expand(config)
  if check is not None:
    for _, _, run_config in runs:
      check(run_config)
  os.makedirs(workdir, exist_ok=True)
  for group in _groups(runs, config.sweep.population):
    if all(_finished(workdir, name) for name, _, _ in group):
      continue
    for name, _, _ in group:
      os.makedirs(os.path.join(workdir, name), exist_ok=True)
    if len(group) > 1:  # a population trains, and finishes, as one
      pop_dir = os.path.join(workdir, "populations", "+".join(n for n, _, _ in group)[:200])
      os.makedirs(pop_dir, exist_ok=True)
      members = [(os.path.join(workdir, n), c) for n, _, c in group]
      results = train.train_population(group[0][2], pop_dir, members)
    else:
      name, _, run_config = group[0]
      results = [train.train_and_evaluate(run_config, os.path.join(workdir, name))]
    _write_summary(workdir, runs)
    if on_result is not None:
      for (name, _, _), r in zip(group, results, strict=True):
        on_result(name, r)
  entries = _write_summary(workdir, runs)
  if config.sweep.report and jax.process_index() == 0:
    report.REPORTS[config.sweep.report](workdir, entries, config)
  return entries
