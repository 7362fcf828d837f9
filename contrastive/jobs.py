"""The jobs a config names (`config.job`), as `run.py` runs them: `run(config, workdir)`.

* "train": one run (`train.train_and_evaluate`), or a sweep when `sweep.runs` is set
  (`sweep.run`), followed by the paper study's report when `sweep.report` names one.
* "analysis": a study without training runs (the relative penalty, Fig. 3).

Every config is checked before anything is written; the errors a user fixes
(`USER_ERRORS`) carry a one-line message.
"""

import json
import os

import jax

from contrastive import checkpoint
from contrastive import checks
from contrastive import config as config_lib
from contrastive import experiments
from contrastive import locking
from contrastive import paths
from contrastive import plot
from contrastive import reporting
from contrastive import sweep
from contrastive import train
from contrastive.data import sources

# Errors that are the user's to fix: run.py prints them as one line, exit 2.
USER_ERRORS = (
  config_lib.ConfigError,
  sources.DatasetNotPreparedError,
  train.NonFiniteLossError,
  checkpoint.CheckpointMismatchError,
  locking.WorkdirBusyError,
  locking.WorkdirUnwritableError,
  checkpoint.CheckpointWriteError,
)


def print_results(results: dict, path: str) -> None:
  """A finished run's figures, one a line with what it means (`reporting.MEANINGS`)."""
  for key, meaning in reporting.MEANINGS.items():
    if key not in results:  # pixel kNN: not computed on streamed datasets
      continue
    value = results[key]
    shown = f"{value:.4f}" if isinstance(value, float) and key != "wall_time_s" else str(value)
    print(f"{key + ':':<24}{shown:<9} {meaning}")
  if "time_s" in results:  # absent from results written before it existed
    print("time_s: " + ", ".join(f"{k} {v}" for k, v in results["time_s"].items()))
  print(f"results: {path}")


def headline(name: str, results: dict, path: str) -> str:
  """A finished sweep run in one line: its name, accuracies and loss, where it is."""
  figures = ", ".join(
    f"{k} {results[k]:.4f}" for k in ("knn_accuracy", "linear_accuracy", "final_loss")
  )
  return f"finished {name}: {figures} ({path})"


def _study(name: str):
  try:
    return experiments.get(name)
  except ValueError as e:
    raise config_lib.ConfigError(str(e)) from None


def finished_run(workdir: str, name: str, results: dict) -> None:
  """A sweep's run has finished: its headline, and its figure in its directory."""
  print(headline(name, results, f"{workdir}/{name}/results.json"), flush=True)
  if jax.process_index() == 0:
    plot.draw_run(os.path.join(workdir, name))


def skipping_line(done: list[str], total: int) -> str:
  """What a sweep says of its finished runs: their names when a few, else how many (a
  45-run study rerun to redraw its report would otherwise print one 5,000-character line)."""
  if len(done) <= 3:
    return f"skipping {len(done)} finished runs: {', '.join(done)}"
  return f"skipping {len(done)} of {total} runs, finished: {done[0]}, ..., {done[-1]}"


def train_job(config, workdir: str) -> None:
  """One run, or the sweep of `config.sweep.runs` and its study's report."""
  if not config.sweep.runs:
    checks.check(config)
    path = paths.path(workdir, "results.json")
    if path.exists():  # as a sweep skips its finished runs
      print(f"{workdir} holds a finished run; its results (delete results.json to evaluate "
            "again, or pass a new --workdir to train anew):")  # fmt: skip
      print_results(json.loads(path.read_text()), str(path))
      return
    print_results(train.train_and_evaluate(config, workdir), f"{workdir}/results.json")
    if jax.process_index() == 0:
      print(f"figure: {plot.draw_run(workdir)} (redraw: python -m contrastive.plot {workdir})")
    return
  study = _study(config.sweep.report) if config.sweep.report else None
  print(f"sweep of {len(config.sweep.runs)} runs in {workdir}")
  done = sweep.finished(workdir, sweep.expand(config))
  if done:
    print(skipping_line(done, len(config.sweep.runs)))
  entries = sweep.run(
    config,
    workdir,
    check=checks.check,
    on_start=lambda name, k, n: print(f"run {k}/{n}: {name}", flush=True),
    on_result=lambda name, r: finished_run(workdir, name, r),
    on_skip=lambda name, k, n, holder: print(
      f"run {k}/{n}: {name} is training in {holder}; skipped", flush=True
    ),
  )
  print(f"sweep: {workdir}/{sweep.SWEEP_FILE}")
  left = len(config.sweep.runs) - len(entries)
  if left:
    print(
      f"{left} of {len(config.sweep.runs)} runs are not finished (training in other "
      "processes); the report covers the finished ones, and the last process to finish "
      "writes the complete one (or rerun this command then)."
    )
  if study is not None and jax.process_index() == 0:
    print(f"report: {study.report(workdir, entries, config).paths['report']}")
  if jax.process_index() == 0 and entries:  # after the report: a figure never costs it
    print(f"figure: {plot.draw_sweep(workdir)[0]} (and each run's {plot.CURVES}; redraw: "
          f"python -m contrastive.plot {workdir} --runs)")  # fmt: skip


def analysis_job(config, workdir: str) -> None:
  """A study computed without training (`config.experiment`): its report and figures."""
  written = _study(config.experiment).report(workdir, [], config)
  for name, path in written.paths.items():
    print(f"{name}: {path}")


JOBS = {"train": train_job, "analysis": analysis_job}


def run(config, workdir: str) -> None:
  """Runs the job `config.job` names in `workdir`."""
  if config.job not in JOBS:
    raise config_lib.ConfigError(f"Unknown job {config.job!r}; valid: {', '.join(JOBS)}.")
  JOBS[config.job](config, workdir)
