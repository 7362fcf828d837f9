"""What a run prints: the progress line (the whole console: test_multihost)."""

import io
import os

from contrastive import logs


def test_progress_to_a_file_writes_a_line_at_most_every_interval_and_the_last():
  out = io.StringIO()  # not a terminal
  progress = logs.Progress(10, stream=out, interval=3600)
  for step in range(1, 11):
    progress.update(step, "loss 1.0")
  progress.close()
  assert [line.split()[1] for line in out.getvalue().splitlines()] == ["1/10", "10/10"]


def test_the_eta_counts_the_steps_after_the_first_not_its_compilation(monkeypatch):
  clock = iter([0.0, 100.0, 101.0])  # start; the first step (compiling) ends; 10 steps later
  monkeypatch.setattr(logs.time, "perf_counter", lambda: next(clock))
  out = io.StringIO()
  progress = logs.Progress(1010, stream=out, interval=0.0)
  progress.restart(1)  # at 100 s, after the first step
  progress.update(11, "loss 1.0")  # 10 steps in 1 s: 999 steps left, 99.9 s
  assert out.getvalue().split("ETA ")[1].strip() == "00:01:39"


def test_help_lists_the_configs_the_studies_the_losses_and_every_key():
  from contrastive import cli
  from contrastive import config as config_lib
  from contrastive import experiments
  from contrastive import objective

  text = cli.help_text(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert text.startswith("usage: python run.py --config=configs/NAME.py")
  assert "quickstart.py" in text and "configs/relative_penalty.py" in text
  for name in experiments.names():
    assert name in text
  for name in objective.SPECS:
    assert f"{name}: " in text
  for key, _ in cli.flat_keys(config_lib.base()):
    assert f"{key}=" in text, key
  assert "--compilation_cache" in text and "--helpfull" in text
