"""What a run prints: the progress line (the whole console: test_multihost)."""

import io

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
