"""Preemption: a run killed mid-way (SIGKILL or SIGTERM) resumes to identical results."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from contrastive import checkpoint
from contrastive import locking

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_STEPS = 2 * (1497 // 64)  # tiny_run: 2 epochs of digits at batch 64


def _start(workdir, cache):
  return subprocess.Popen(
    [sys.executable, "tests/tiny_run.py", str(workdir), str(cache)],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _results(workdir):
  results = json.loads((workdir / "results.json").read_text())
  del results["wall_time_s"], results["time_s"]  # timings differ run to run
  del results["provenance"]  # start and end times too
  return results


def _final_params(workdir):
  tree, step = checkpoint.read_latest(workdir / "checkpoints")
  return step, tree


@pytest.mark.heavy(seconds=50)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_identical_results(tmp_path, tiny_uninterrupted, tiny_cache, sig):
  uninterrupted, cache = tiny_uninterrupted, tiny_cache
  proc = _start(tmp_path, cache)
  first = tmp_path / "checkpoints" / "10"
  deadline = time.time() + 300
  while not first.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  proc.send_signal(sig)
  out, err = proc.communicate(timeout=300)
  # The kill must land mid-run for the test to mean anything.
  assert not (tmp_path / "results.json").exists(), "run finished before it was killed"
  if sig == signal.SIGTERM:
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received: saved a checkpoint at step" in out
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps and steps[-1] < NUM_STEPS

  resumed = _start(tmp_path, cache)
  _, err = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, err[-3000:]
  assert _results(tmp_path) == _results(uninterrupted)
  segments = json.loads((tmp_path / "results.json").read_text())["provenance"]
  assert [s["start_step"] for s in segments] == [0, steps[-1]]  # both segments kept
  assert all("ended" in s for s in segments[1:]) and segments[0]["code"] == segments[1]["code"]
  step_a, a = _final_params(tmp_path)
  step_b, b = _final_params(uninterrupted)
  assert step_a == step_b == NUM_STEPS
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)  # bit for bit
  logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").open()]
  assert logged == sorted(set(logged))  # no step logged twice across the restart


def _tree(value, size=3):
  return {"w": np.full((size,), value, np.float32), "step": np.asarray(value, np.int32)}


def _damage(step_dir, how):
  if how == "truncated":  # every data file cut short, as a full disk or a crash leaves it
    for f in step_dir.glob("**/d/*"):
      with open(f, "r+b") as handle:
        handle.truncate(10)
  else:  # how == "missing": a part of the checkpoint gone
    for f in step_dir.glob("**/manifest.ocdbt"):
      f.unlink()
    for f in step_dir.glob("**/_METADATA"):
      f.unlink()


@pytest.mark.parametrize("how", ["truncated", "missing"])
def test_a_damaged_latest_checkpoint_is_set_aside_and_an_older_one_restored(tmp_path, capfd, how):
  ckpt = checkpoint.Checkpointer(tmp_path, every=5, keep=3)
  ckpt.save(5, _tree(5))
  ckpt.save(10, _tree(10))
  ckpt.close()
  _damage(tmp_path / "10", how)
  ckpt = checkpoint.Checkpointer(tmp_path, every=5, keep=3)
  restored = ckpt.restore_latest(_tree(0))
  assert int(restored["step"]) == 5 and np.all(np.asarray(restored["w"]) == 5)
  warning = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning:")]
  assert (
    len(warning) == 1 and f"checkpoint {tmp_path / '10'} is incomplete or corrupt" in warning[0]
  )
  assert (tmp_path / "10.corrupt").is_dir() and (tmp_path / "5").is_dir()  # nothing deleted
  ckpt.save(10, _tree(11))  # the run goes on past the damaged step
  ckpt.close()
  again = checkpoint.Checkpointer(tmp_path, every=5, keep=3)
  assert int(again.restore_latest(_tree(0))["step"]) == 11
  again.close()


def test_a_checkpoint_of_another_config_stops_with_one_line(tmp_path):
  ckpt = checkpoint.Checkpointer(tmp_path, every=5, keep=3)
  ckpt.save(5, _tree(5, size=3))
  ckpt.close()
  ckpt = checkpoint.Checkpointer(tmp_path, every=5, keep=3)
  with pytest.raises(
    checkpoint.CheckpointMismatchError, match=r"w: saved \(3,\), this config \(4,\)"
  ):
    ckpt.restore_latest(_tree(0, size=4))
  ckpt.close()
  assert (tmp_path / "5").is_dir() and not (tmp_path / "5.corrupt").exists()


def _lock_in_subprocess(workdir, then=""):
  code = f"from contrastive import locking; locking.WorkdirLock({str(workdir)!r}); {then}"
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)


def test_a_second_process_on_a_workdir_stops_naming_the_first(tmp_path):
  # A run that crashed holding the lock does not leave it stuck.
  crashed = _lock_in_subprocess(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
  assert crashed.returncode == -signal.SIGKILL
  lock = locking.WorkdirLock(str(tmp_path))
  try:
    second = _lock_in_subprocess(tmp_path)
    assert second.returncode != 0
    assert f"is in use by pid {os.getpid()} on " in second.stderr.strip().splitlines()[-1]
  finally:
    lock.release()
  assert not (tmp_path / ".lock").exists()  # a released lock leaves nothing behind
  assert _lock_in_subprocess(tmp_path).returncode == 0  # released: free again


def test_an_unwritable_workdir_stops_with_one_line_before_training(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  proc = subprocess.run(
    [sys.executable, "run.py", "--config=configs/quickstart.py", f"--workdir={blocker}/run",
     "--config.data.name=digits", "--config.data.image_size=28", "--config.data.augment=randbit",
     "--config.model.encoder=convn"],
    cwd=ROOT, capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert lines[-1] == (
    f"error: cannot write to the workdir {blocker}/run: Not a directory; choose a writable "
    "--workdir."
  ), proc.stderr[-2000:]


def test_a_full_disk_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  ckpt = checkpoint.Checkpointer(tmp_path, every=5, keep=3)
  ckpt.save(5, _tree(5, size=1000))
  disk = shutil.disk_usage(tmp_path)
  # The disk fills up: 1 KiB left when the next checkpoint is due.
  monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: disk._replace(free=1024))
  with pytest.raises(checkpoint.CheckpointWriteError) as refused:
    ckpt.save(10, _tree(10, size=1000))
  message = str(refused.value)
  assert "\n" not in message and message.startswith(f"cannot save checkpoint 10 in {tmp_path}")
  assert "checkpoint 5 is intact" in message and "rerun the same command to resume" in message
  monkeypatch.undo()
  # Orbax itself refused (TensorStore's error, as a full tmpfs gave it): its partial
  # checkpoint is removed and the same one line is raised.
  (tmp_path / "15.orbax-checkpoint-tmp").mkdir()
  failure = ValueError(
    'RESOURCE_EXHAUSTED: Error writing "w/0" in OCDBT database: Failed to write 812406 '
    "bytes to file 19: No space left on device [os_error_code='28']"
  )

  def refuse(*args, **kwargs):
    raise failure

  monkeypatch.setattr(ckpt._manager, "save", refuse)
  with pytest.raises(
    checkpoint.CheckpointWriteError, match="No space left on device; checkpoint 5"
  ):
    ckpt.save(15, _tree(15, size=1000))
  monkeypatch.undo()
  ckpt.close()
  assert sorted(p.name for p in tmp_path.iterdir()) == ["5"]
  again = checkpoint.Checkpointer(tmp_path, every=5, keep=3)
  assert int(again.restore_latest(_tree(0, size=1000))["step"]) == 5
  again.close()
  assert checkpoint.storage_failure(OSError(errno.EDQUOT, "quota")) == os.strerror(errno.EDQUOT)
  assert checkpoint.storage_failure(ValueError("shapes differ")) is None


def test_ctrl_c_asks_the_loop_to_save_and_stop_and_twice_interrupts(capsys):
  # SIGINT is handled as SIGTERM is (the loop saves a checkpoint and stops); a second
  # Ctrl-C interrupts at once, and the handlers before are restored.
  before = signal.getsignal(signal.SIGINT)
  stop = checkpoint.StopRequest()
  try:
    assert not stop.requested
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.requested and stop.signal == "SIGINT"
    assert "Ctrl-C: saving a checkpoint after this step" in capsys.readouterr().out
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
  finally:
    stop.restore()
  stop = checkpoint.StopRequest()
  os.kill(os.getpid(), signal.SIGTERM)
  stop.restore()
  assert stop.requested and stop.signal == "SIGTERM"
  assert signal.getsignal(signal.SIGINT) is before
