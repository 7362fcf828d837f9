"""Looking at finished runs: `python -m contrastive.plot` (a run's curves, a sweep's summary)
and what `saved.load` says of a directory that is not a finished run."""

import csv
import json

import pytest

from contrastive import config as config_lib
from contrastive import plot
from contrastive import recipes


def _run_dir(path, uniformity_sign, accuracy=0.8, seed=0):
  path.mkdir(parents=True)
  rows = [
    {"step": s, "loss": 5.0 - s / 100, "pos_sim": 0.7, "neg_sim": 0.1, "neg_sim_max": 0.9,
     "temperature": 0.2, "batch_uniformity": uniformity_sign * (1.0 + s / 100),
     "batch_alignment": 0.5}
    for s in (10, 20, 30)
  ]  # fmt: skip
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  results = {"knn_accuracy": accuracy - 0.05, "linear_accuracy": accuracy, "uniformity": 2.5,
             "tolerance": 0.6, "local_separation": [0.6] + [0.9 - k / 100 for k in range(10)],
             "test_examples": 1000}  # fmt: skip
  (path / "results.json").write_text(json.dumps(results))
  return results


def _plotted(png):
  with open(str(png).replace(".png", ".csv")) as f:
    return list(csv.DictReader(f))


def test_a_run_gets_its_curves_with_one_sign_of_uniformity(tmp_path):
  for sign in (+1, -1):  # -1: a run logged before the sign was made one (L_unif)
    run = tmp_path / f"run{sign}"
    _run_dir(run, sign)
    png = plot.draw_run(str(run))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    rows = _plotted(png)
    unif = [float(r["value"]) for r in rows if r["metric"] == "batch_uniformity"]
    assert unif == [1.1, 1.2, 1.3]  # -L_unif, whatever the run logged
    assert len([r for r in rows if r["metric"] == "local_separation"]) == 11
    assert {r["metric"] for r in rows} >= {"loss", "pos_sim", "neg_sim_max", "temperature"}
  assert "linear 0.800" in plot.title(json.loads((run / "results.json").read_text()))


def test_a_sweep_gets_its_summary_and_the_command_says_what_is_wrong(tmp_path, capsys):
  config = recipes.latent()
  entries = []
  for k, overrides in enumerate(("loss.temperature=0.1", "loss.temperature=0.5")):
    for seed in (0, 1):
      name = overrides + (f",seed={seed}" if seed else "")
      run_config = config_lib.with_overrides(config, name)
      results = _run_dir(tmp_path / name, +1, accuracy=0.7 + 0.1 * k + 0.01 * seed)
      entries.append({"name": name, "overrides": name, "results": results,
                      "config": run_config.to_dict()})  # fmt: skip
  (tmp_path / "sweep.json").write_text(
    json.dumps({"declared_runs": 4, "runs": entries, "config": config.to_dict()})
  )
  assert plot.main([str(tmp_path), "--runs"]) == 0
  written = capsys.readouterr().out.split()
  assert written[0].endswith("sweep.png") and len(written) == 5  # and each run's curves
  rows = _plotted(written[0])
  assert [r["run"] for r in rows] == ["loss.temperature=0.1", "loss.temperature=0.5"]
  assert [float(r["linear_accuracy"]) for r in rows] == pytest.approx([0.705, 0.805])
  assert [int(r["seeds"]) for r in rows] == [2, 2]
  assert plot.main([str(tmp_path / "nothing")]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: ") and "not a run" in err[0]


def test_loading_what_is_not_a_finished_run_says_what_it_is(tmp_path):
  from contrastive import saved

  def why(path):
    with pytest.raises(FileNotFoundError) as e:
      saved.load(str(path))
    return str(e.value)

  assert "No directory" in why(tmp_path / "missing")
  _run_dir(tmp_path / "sweep" / "loss.temperature=0.1", +1)
  (tmp_path / "sweep" / "sweep.json").write_text("{}")
  assert "is a sweep's directory, not a run: load one of its 1 finished runs" in why(
    tmp_path / "sweep"
  )
  assert "is a directory of sweeps (sweep)" in why(tmp_path)
  (tmp_path / "unfinished").mkdir()
  (tmp_path / "unfinished" / "metrics.jsonl").write_text("")
  assert "the run has not finished" in why(tmp_path / "unfinished")


def test_a_run_without_a_readable_checkpoint_says_its_model_cannot_be_rebuilt(tmp_path):
  from contrastive import saved

  config = config_lib.with_overrides(
    recipes.quickstart(), "data.name=digits,data.image_size=28,model.encoder=convn"
  )
  results = _run_dir(tmp_path / "run", +1)
  (tmp_path / "run" / "results.json").write_text(
    json.dumps({**results, "config": config.to_dict()})
  )
  (tmp_path / "run" / "checkpoints").mkdir()  # there, but nothing in it
  run = saved.load(str(tmp_path / "run"))
  assert saved.has_model(run)
  with pytest.raises(FileNotFoundError, match="No readable checkpoint in .*: cannot rebuild"):
    saved.test_features(run)
