"""What a run prints: the progress line, and the quickstart's whole console."""

import io
import os
import re
import subprocess
import sys
import time

from contrastive import logs


def test_progress_to_a_file_writes_a_line_at_most_every_interval_and_the_last():
  out = io.StringIO()  # not a terminal
  progress = logs.Progress(10, stream=out, interval=3600)
  for step in range(1, 11):
    progress.update(step, "loss 1.0")
  progress.close()
  assert [line.split()[1] for line in out.getvalue().splitlines()] == ["1/10", "10/10"]


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The quickstart, shortened: 2 epochs of 2,048 images (32 steps), a checkpoint every 8.
QUICKSTART = [
  "--config=configs/quickstart.py",
  "--config.data.train_examples=2048",
  "--config.train.num_epochs=2",
  "--config.train.checkpoint_every=8",
  "--config.eval.linear_epochs=3",
]
# Every line the quickstart may print, on stdout then stderr; nothing else.
STDOUT = [
  r"run: configs/quickstart\.py -> \S+ \| shapes 2,048 train / 2,000 test 32x32x3, convn "
  r"float32, contrastive \(simclr, tau 0\.2\), 32 steps \| cpu \(cpu\) x 1 devices, 1 process, "
  r"batch 128 \(128 per device\)",
  r"starting from scratch",
  r"resuming from step 8 \(\S+/checkpoints/8\)",
  r"evaluating: kNN and a 3-epoch linear probe on 2,048 \+ 2,000 images",
  r"evaluated in \d+\.\d s",
  r"(knn_accuracy|linear_accuracy|pixel_knn_accuracy|uniformity|tolerance|alignment|"
  r"final_loss|wall_time_s): -?\d+\.\d{4}",
  r"time_s: setup [\d.]+, first_step [\d.]+, train [\d.]+, evaluate [\d.]+",
  r"results: \S+/results\.json",
]
STDERR = [r"step \d+/32 +\d+\.\d% \| loss \d+\.\d{4} \| \d+ img/s \| ETA \d\d:\d\d:\d\d"]


def _unexpected(text, patterns):
  return [line for line in text.splitlines() if not any(re.fullmatch(p, line) for p in patterns)]


def test_the_quickstart_says_only_what_a_user_needs_and_resumes_after_a_kill(tmp_path):
  workdir = tmp_path / "qs"
  command = [sys.executable, "run.py", *QUICKSTART, f"--workdir={workdir}",
             f"--compilation_cache={tmp_path / 'cache'}"]  # fmt: skip
  first = subprocess.Popen(
    command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  deadline = time.time() + 300
  while not (workdir / "checkpoints" / "8").exists() and time.time() < deadline:
    time.sleep(0.05)
  first.kill()  # SIGKILL: nothing runs after it
  out1, err1 = first.communicate(timeout=60)
  assert first.returncode == -9, err1[-2000:]
  second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert second.returncode == 0, second.stderr[-2000:]
  for text, patterns in ((out1, STDOUT), (second.stdout, STDOUT), (err1, STDERR),
                         (second.stderr, STDERR)):  # fmt: skip
    assert not _unexpected(text, patterns), _unexpected(text, patterns)[:5]
  assert out1.splitlines()[1] == "starting from scratch"
  lines = second.stdout.splitlines()
  assert re.fullmatch(STDOUT[0], lines[0]) and re.fullmatch(STDOUT[2], lines[1])
  assert [line.split(":")[0] for line in lines[4:]] == [
    "knn_accuracy", "linear_accuracy", "pixel_knn_accuracy", "uniformity", "tolerance",
    "alignment", "final_loss", "wall_time_s", "time_s", "results",
  ]  # fmt: skip
  assert second.stderr.splitlines()[-1].startswith("step 32/32 100.0%")
