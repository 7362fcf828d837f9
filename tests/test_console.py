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
