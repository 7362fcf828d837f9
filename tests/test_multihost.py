"""Two local processes joined by jax.distributed train like one process."""

import json
import os
import re
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from contrastive import checkpoint
from contrastive import reporting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERRIDES = [
  "--config.data.name=digits",
  "--config.data.image_size=28",
  "--config.data.augment=randbit",
  "--config.data.train_examples=512",
  "--config.data.batch_size=32",
  "--config.model.encoder=convn",
  "--config.model.out_dim=32",
  # The memory bank's rows sharded over processes; the plain contrastive loss, since
  # a hard loss's top k can flip between two negatives whose similarities the two
  # layouts round an ulp apart, and 16 steps then drift by more than rounding (its
  # sharded kernel is checked on one step in tests/mesh_parity.py: "bank_hard").
  "--config.loss.name=contrastive",
  "--config.loss.layout=memory_bank",
  # A step size at which 16 steps stay within rounding of each other: at the recipe's
  # 0.1, one device's and two devices' sums (equal to 2e-7 at step 0) drifted to 7e-4
  # in the gradient norm by step 4 on some batch orders (chaotic, not wrong).
  "--config.optimizer.learning_rate=0.02",
  "--config.train.num_epochs=1",
  "--config.train.log_every=4",
  "--config.train.tensorboard=False",
  "--config.train.checkpoint_every=8",
  "--config.eval.linear_epochs=3",
  "--config.eval.monitor_every=8",  # the kNN monitor too, at steps 8 and 16
]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _command(workdir, *extra):
  return [
    sys.executable,
    "run.py",
    "--config=configs/quickstart.py",
    f"--workdir={workdir}",
    *OVERRIDES,
    *extra,
  ]


def _params(workdir):
  tree, _ = checkpoint.read_latest(os.path.join(workdir, "checkpoints"))
  return jax.tree.leaves(tree["params"]) + [tree["bank"]]


_FIGURE, _SECONDS = r"-?\d+\.\d{4}", r"\d+(\.\d)?"
# Every line a default run may print, on stdout then stderr: nothing else (no library
# INFO logging, no warnings from a healthy run).
STDOUT = [
  r"run: configs/quickstart\.py -> \S+ \| digits 512 train / 300 test 28x28x1, convn float32, "
  r"contrastive \(memory_bank, tau 0\.2\), 16 steps \| cpu \(cpu\) x 1 devices, 1 process, "
  r"batch 32 \(32 per device\)",
  r"starting from scratch",
  r"evaluating: kNN and a 3-epoch linear probe on 512 \+ 300 images",
  r"evaluated in \d+\.\d s",
  *(  # each figure with what it means
    key + ": +" + (_SECONDS if key == "wall_time_s" else _FIGURE) + " +" + re.escape(meaning)
    for key, meaning in reporting.MEANINGS.items()
  ),
  r"time_s: setup [\d.]+, first_step [\d.]+, train [\d.]+, evaluate [\d.]+",
  r"results: \S+/results\.json",
  r"figure: (\S+)/curves\.png \(redraw: python -m contrastive\.plot \1\)",
]
STDERR = [r"step \d+/16 +\d+\.\d% \| loss \d+\.\d{4} \| \d+ img/s \| ETA \d\d:\d\d:\d\d"]


def _unexpected(text, patterns):
  return [line for line in text.splitlines() if not any(re.fullmatch(p, line) for p in patterns)]


@pytest.mark.heavy(seconds=56)
def test_two_processes_agree_with_one(tmp_path):
  # The one-process run goes alongside the two-process one: compilation is mostly
  # single-threaded, so the three share the 2 cores better than in turn.
  single = tmp_path / "single"
  alone = subprocess.Popen(  # the quickstart's command, shortened: its whole console
    _command(single),
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  multi = tmp_path / "multi"
  port = _free_port()
  procs = [
    subprocess.Popen(
      _command(
        multi,
        "--distributed",
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        f"--process_id={i}",
        *(["--verbosity=1"] if i == 0 else []),  # with the libraries' INFO logging
      ),
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  outs, errs = [], []
  for p in [alone, *procs]:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    outs.append(out)
    errs.append(err)
  info = re.compile(r"^I\d{4} ", re.MULTILINE)  # absl's INFO lines (Orbax's among them)
  assert info.search(errs[1]) and "CheckpointManager" in errs[1]  # --verbosity=1
  assert not info.search(errs[2]), errs[2][:2000]
  for text, patterns in ((outs[0], STDOUT), (errs[0], STDERR)):
    assert not _unexpected(text, patterns), _unexpected(text, patterns)[:5]
  lines = outs[0].splitlines()
  assert re.fullmatch(STDOUT[0], lines[0]) and lines[1] == "starting from scratch"
  assert [line.split(":")[0] for line in lines[4:]] == [
    "knn_accuracy", "linear_accuracy", "online_linear_accuracy", "pixel_knn_accuracy",
    "uniformity", "tolerance", "alignment", "final_loss", "wall_time_s", "time_s", "results",
    "figure",
  ]  # fmt: skip
  assert errs[0].splitlines()[-1].startswith("step 16/16 100.0%")
  # Process 0 says where the run runs; process 1 prints no start line.
  assert "| cpu (cpu) x 2 devices, 2 processes, batch 32 (16 per device)" in outs[1]
  assert "| cpu (cpu) x 1 devices, 1 process, batch 32 (32 per device)" in outs[0]
  assert "run: " not in outs[2]

  a = json.loads((single / "results.json").read_text())
  b = json.loads((multi / "results.json").read_text())
  assert a["train_examples"] == b["train_examples"] == 512 and a["steps"] == b["steps"] == 16
  np.testing.assert_allclose(b["final_loss"], a["final_loss"], rtol=1e-5)
  # The online probe trained on both processes' shards of each batch, as on one.
  assert abs(b["online_linear_accuracy"] - a["online_linear_accuracy"]) <= 3 / 300
  for x, y in zip(_params(multi), _params(single), strict=True):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
  rows = (multi / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(r)["step"] for r in rows] == [4, 8, 12, 16]  # written once, by process 0
  # The kNN monitor on two processes sees what it sees on one.
  monitors = [
    {r["step"]: r["knn_monitor"] for r in map(json.loads, (d / "metrics.jsonl").open())
     if "knn_monitor" in r} for d in (single, multi)
  ]  # fmt: skip
  assert list(monitors[0]) == list(monitors[1]) == [8, 16]
  assert all(abs(monitors[0][k] - monitors[1][k]) <= 3 / 300 for k in (8, 16)), monitors
