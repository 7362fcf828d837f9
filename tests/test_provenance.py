"""Provenance: the code version from git, and reports that say when runs differ."""

import subprocess

from contrastive import provenance
from contrastive import reporting


def _git(repo, *args):
  return subprocess.run(
    ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
    cwd=repo,
    capture_output=True,
    text=True,
    check=True,
  ).stdout.strip()


def test_code_version_is_the_checkouts_commit_and_says_when_it_is_modified(tmp_path):
  _git(tmp_path, "init", "-q")
  (tmp_path / "a.py").write_text("x = 1\n")
  _git(tmp_path, "add", "a.py")
  _git(tmp_path, "commit", "-q", "-m", "one")
  assert provenance.code(str(tmp_path)) == {
    "commit": _git(tmp_path, "rev-parse", "HEAD"),
    "dirty": False,
  }
  (tmp_path / "a.py").write_text("x = 2\n")
  assert provenance.code(str(tmp_path))["dirty"] is True
  outside = tmp_path.parent / "not_a_repo"
  outside.mkdir()
  assert set(provenance.code(str(outside))) == {"version"}  # an installed copy


def _entry(name, commit, kind="cpu"):
  seg = provenance.segment(0)
  seg["code"], seg["device_kind"] = {"commit": commit, "dirty": False}, kind
  return {"name": name, "results": {"provenance": [seg]}}


def test_a_report_of_runs_from_two_commits_says_so(tmp_path):
  same = [_entry("a", "1" * 40), _entry("b", "1" * 40)]
  lines = provenance.report_lines(same)
  assert lines[0] == "## Provenance" and "different" not in "\n".join(lines)
  assert lines[-1].startswith("- every run (2): code 1111111111, cpu cpu x 1, jax ")
  mixed = [_entry("a", "1" * 40), _entry("b", "2" * 40)]
  report = reporting.write_report(
    str(tmp_path), "t", title="T", intro="i", tables=[], claims=None, figures=[], paths={},
    entries=mixed,
  )  # fmt: skip
  text = (tmp_path / "report.md").read_text()
  assert report.paths["report"].endswith("report.md")
  assert "**These runs come from 2 different code versions or devices**" in text
  assert "- code 1111111111" in text and "- code 2222222222" in text
