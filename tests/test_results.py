"""RESULTS.md is generated from the committed runs, and `check` catches any change."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from contrastive import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _check(root, output, readme="none"):
  return subprocess.run(
    [sys.executable, "-m", "contrastive.results", "check", "--root", str(root),
     "--output", str(output), "--readme", str(readme)],
    cwd=ROOT, capture_output=True, text=True, timeout=600,
  )  # fmt: skip


def test_results_are_generated_from_the_runs_and_a_changed_number_fails_the_check(tmp_path):
  # A copy of one committed study (the smallest), as results/ would hold it.
  root = tmp_path / "results"
  shutil.copytree(os.path.join(ROOT, "results", "latent", "macl"), root / "latent" / "macl")
  output = tmp_path / "RESULTS.md"
  readme = tmp_path / "README.md"
  readme.write_text(f"# A README\n\n{results.BEGIN}\nstale\n{results.END}\n\nAfter.\n")
  results.write(str(root), str(output), str(readme))
  text = output.read_text()
  block = readme.read_text()
  assert block.startswith("# A README\n\n") and block.endswith("\n\nAfter.\n")
  assert "stale" not in block and "| macl | MACL linear" in block
  assert "### Huang et al. (ICML 2023), MACL" in text
  assert "![adaptive temperature; gain by batch](results/latent/macl/macl_temperature.png)" in text
  assert "Not run yet at this scale: no study has runs under `results/small/`." in text
  runs = [p for p in (root / "latent" / "macl").iterdir() if (p / "results.json").exists()]
  commit = json.loads((runs[0] / "provenance.json").read_text())[0]["code"]["commit"][:10]
  assert f"Runs: {len(runs)} of {len(runs)} declared" in text and f"code {commit}" in text

  assert results.check(str(root), str(output), str(readme)) == []

  # Any number in any run's results.json, shown in a table or not, fails the check.
  run = sorted(p for p in (root / "latent" / "macl").iterdir() if p.is_dir())[0]
  saved = json.loads((run / "results.json").read_text())
  saved["local_separation"][3] += 1e-6  # in no table
  (run / "results.json").write_text(json.dumps(saved))
  proc = _check(root, output, readme)
  assert proc.returncode == 1, proc.stdout + proc.stderr
  assert "RESULTS.md differs from what the runs give" in proc.stderr
  assert "run `python -m contrastive.results` and commit the result" in proc.stderr
  # ...and the check changed nothing: regenerating accepts the new number.
  assert json.loads((run / "results.json").read_text()) == saved
  results.write(str(root), str(output), str(readme))
  assert _check(root, output, readme).returncode == 0, "the CLI's check, on a clean tree"

  # A hand edit of a report is a difference too.
  report = root / "latent" / "macl" / "report.md"
  report.write_text(report.read_text().replace("84.", "85.", 1))
  problems = results.check(str(root), str(output), str(readme))
  assert any(p.endswith("report.md differs from what the runs give:") for p in problems)


def test_a_directory_that_is_no_scale_or_study_is_named(tmp_path):
  (tmp_path / "latnet" / "macl").mkdir(parents=True)
  with pytest.raises(ValueError, match="latnet: not a scale; valid: latent, small"):
    results.studies(str(tmp_path))
  shutil.rmtree(tmp_path / "latnet")
  (tmp_path / "small" / "macl").mkdir(parents=True)
  with pytest.raises(ValueError, match="small/macl: not a sweep's directory"):
    results.studies(str(tmp_path))
