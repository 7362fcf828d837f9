"""ImageNet-100 streamed from TFDS (mock data): resumable batches, and configs/imagenet100.py
trained, checkpointed, preempted, resumed and evaluated end to end."""

import json
import os
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from contrastive import checkpoint
from contrastive import config as config_lib
from contrastive import train
from contrastive.data import augment
from contrastive.data import sources
from contrastive.data import streaming

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOCK_EXAMPLES = 1000  # per split; the 100-class filter keeps about a tenth


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def test_streamed_batches_resume_exactly_and_cover_each_epoch(data_dir):
  config = augment.preset("npid_imagenet", 24)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    data = streaming.open_split("imagenet100", "train", data_dir=data_dir)
    per_epoch = data.steps_per_epoch(8)

    def batches(start, count, seed=1):
      it = streaming.train_batches(
        data, batch_size=8, config=config, seed=seed, start_step=start, shuffle_buffer=32
      )
      return [next(it) for _ in range(count)]

    whole = batches(0, per_epoch + 3)
    resumed = batches(per_epoch - 2, 5)  # crosses into the second epoch
    other_seed = batches(0, 1, seed=2)
  assert data.num_examples == sum(data.counts) > 8 and data.offset == 0
  for want, got in zip(whole[per_epoch - 2 :], resumed, strict=True):
    for key in ("views", "index", "label"):
      np.testing.assert_array_equal(want[key], got[key])
  epoch0 = np.concatenate([b["index"] for b in whole[:per_epoch]])
  assert len(set(epoch0.tolist())) == per_epoch * 8  # no example twice in an epoch
  assert set(epoch0.tolist()) <= set(range(data.num_examples))
  assert not np.array_equal(whole[0]["index"], other_seed[0]["index"])
  views = whole[0]["views"]
  assert views.shape == (8, 2, 24, 24, 3) and views.dtype == np.uint8
  assert not np.array_equal(views[:, 0], views[:, 1])  # two different crops
  # An example's label is its own in every epoch, and its crops change with the epoch.
  first = {int(i): (int(y), v) for b in whole[:per_epoch] for i, y, v in
           zip(b["index"], b["label"], b["views"], strict=True)}  # fmt: skip
  later = [(int(i), int(y), v) for b in whole[per_epoch:] for i, y, v in
           zip(b["index"], b["label"], b["views"], strict=True) if int(i) in first]  # fmt: skip
  assert later and all(first[i][0] == y for i, y, _ in later)
  assert not all(np.array_equal(first[i][1], v) for i, _, v in later)
  assert np.all((whole[0]["label"] >= 0) & (whole[0]["label"] < 100))
  v1, _ = jax.jit(augment.photometric_batch, static_argnums=2)(
    jax.random.key(0), views, config, whole[0]["index"]
  )
  assert v1.shape == (8, 24, 24, 3) and 0 <= float(v1.min()) and float(v1.max()) <= 1
  assert not np.allclose(v1, views[:, 0] / 255.0)  # colour steps were applied


def tiny_config(data_dir):
  return config_lib.load_file(
    os.path.join(ROOT, "configs/imagenet100.py"),
    [
      ("data.data_dir", data_dir),
      ("data.image_size", "32"),
      ("data.batch_size", "16"),
      ("model.encoder", "convn"),
      ("model.out_dim", "32"),
      ("loss.num_hard", "20"),
      ("train.num_epochs", "2"),
      ("train.log_every", "2"),
      ("train.checkpoint_every", "4"),
      ("train.tensorboard", "False"),
      ("eval.linear_epochs", "2"),
      ("eval.online_probe", "True"),  # trained on streamed batches, read on streamed features
      ("eval.linear_decay_epochs", "()"),
    ],
  )


def _preempt_after(monkeypatch, batches: int):
  """Sends this process SIGTERM as the run takes its `batches`-th batch, as a
  preemptible VM's notice would arrive."""
  inputs = train._inputs

  def counted(run, start):
    for k, batch in enumerate(inputs(run, start), start=1):
      if k == batches:
        os.kill(os.getpid(), signal.SIGTERM)
      yield batch

  monkeypatch.setattr(train, "_inputs", counted)


@pytest.mark.heavy(seconds=39)
def test_imagenet100_config_trains_checkpoints_resumes_and_evaluates(
  data_dir, tmp_path, monkeypatch, capsys
):
  config = tiny_config(data_dir)
  assert config.model.encoder == "convn" and config.loss.layout == "memory_bank"
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    whole = train.train_and_evaluate(config, str(tmp_path / "whole"))
    with monkeypatch.context() as m:
      _preempt_after(m, 7)  # mid-way through the second epoch
      with pytest.raises(SystemExit) as stopped:
        train.train_and_evaluate(config, str(tmp_path / "resumed"))
    assert stopped.value.code == 0
    assert checkpoint.read_latest(str(tmp_path / "resumed" / "checkpoints"))[1] == 7
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
  out = capsys.readouterr().out
  assert "SIGTERM received: saved a checkpoint at step 7" in out
  assert f"resuming from step 7 ({tmp_path}/resumed/checkpoints/7)" in out
  assert f"run: {ROOT}/configs/imagenet100.py -> {tmp_path}/whole | imagenet100 " in out
  assert "32x32x3, convn float32, contrastive (memory_bank" in out
  steps = whole["steps"]
  assert steps == 2 * (whole["train_examples"] // 16) and steps > 7
  for key in ("knn_accuracy", "linear_accuracy", "online_linear_accuracy", "uniformity",
              "tolerance", "final_loss"):  # fmt: skip
    assert np.isfinite(whole[key]) and resumed[key] == whole[key], key
  assert "pixel_knn_accuracy" not in whole  # no pixel features for a streamed dataset
  assert whole["test_examples"] > 0

  def rows(name):
    with open(tmp_path / name / "metrics.jsonl") as f:
      return [(r["step"], r["loss"]) for r in map(json.loads, f)]

  assert rows("resumed") == rows("whole") and len(rows("whole")) == steps // 2
  bank = checkpoint.read_latest(str(tmp_path / "whole" / "checkpoints"))[0]["bank"]
  assert bank.shape == (whole["train_examples"], 32)  # a row per training image


@pytest.mark.heavy(seconds=67)
def test_two_processes_each_stream_their_shard(data_dir, tmp_path):
  def count(split, index):  # examples of process `index`'s shard of `split`
    ds = sources.imagenet100_stream(split, data_dir=data_dir, process_index=index, process_count=2)
    return sum(1 for _ in ds)

  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):  # mock data: per shard requested
    shards = {split: [count(split, i) for i in range(2)] for split in ("train", "validation")}
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  workdir = tmp_path / "two"
  procs = [
    subprocess.Popen(
      [sys.executable, "tests/stream_run.py", str(workdir), data_dir, str(port), "2", str(i)],
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )  # fmt: skip
    for i in range(2)
  ]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs, strict=True):
    assert p.returncode == 0, err[-3000:]
  assert "x 2 devices, 2 processes, batch 16 (8 per device)" in outs[0][0]
  results = json.loads((workdir / "results.json").read_text())
  # Every example of both shards once: a memory-bank row each, every test image evaluated.
  assert results["train_examples"] == sum(shards["train"]) > 0
  assert results["test_examples"] == sum(shards["validation"]) > 0
  assert np.isfinite(results["final_loss"]) and 0 <= results["knn_accuracy"] <= 1
  assert 0 <= results["online_linear_accuracy"] <= 1  # the probe over both shards
  bank = checkpoint.read_latest(str(workdir / "checkpoints"))[0]["bank"]
  assert bank.shape == (sum(shards["train"]), 32)
  # Each process gives 8 images a step, for as many steps as the smaller shard fills.
  assert results["steps"] == 2 * (min(shards["train"]) // 8)
