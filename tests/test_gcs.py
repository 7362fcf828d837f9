"""A `gs://` workdir, against a local Cloud Storage emulator (tests/gcs_emulator.py).

The runs reach the emulator the standard way (STORAGE_EMULATOR_HOST); this test
reads the bucket back over the plain JSON API, independently of the code under test.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "runs"
NUM_STEPS = 2 * (1497 // 64)  # tiny_run: 2 epochs of digits at batch 64


@pytest.fixture(scope="module")
def emulator():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  proc = subprocess.Popen(
    [sys.executable, "tests/gcs_emulator.py", str(port), BUCKET],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
  )
  assert proc.stdout.readline().strip() == "ready"
  url = f"http://127.0.0.1:{port}"
  yield url
  proc.kill()
  proc.wait()


def _env(url):
  return {**os.environ, "STORAGE_EMULATOR_HOST": url}


def _names(url, prefix):
  """The names of the bucket's objects under `prefix`."""
  query = urllib.parse.urlencode({"prefix": prefix})
  with urllib.request.urlopen(f"{url}/storage/v1/b/{BUCKET}/o?{query}") as r:
    return [item["name"] for item in json.load(r).get("items", [])]


def _object(url, name):
  quoted = urllib.parse.quote(name, safe="")
  try:
    with urllib.request.urlopen(f"{url}/storage/v1/b/{BUCKET}/o/{quoted}?alt=media") as r:
      return r.read()
  except urllib.error.HTTPError as e:
    if e.code == 404:
      return None
    raise


def _tiny(workdir, cache, url):
  return subprocess.Popen(
    [sys.executable, "tests/tiny_run.py", str(workdir), str(cache), "tb"],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    env=_env(url),
  )


def _figures(results):
  results = json.loads(json.dumps(results))
  del results["wall_time_s"], results["time_s"], results["provenance"]  # differ run to run
  del results["config"]["train"]["tensorboard"]  # the bucket's run writes events too
  return results


@pytest.mark.heavy(seconds=31)
def test_a_bucket_workdir_killed_and_rerun_ends_as_a_local_run(
  emulator, tiny_uninterrupted, tiny_cache
):
  # The local reference: the session's uninterrupted tiny run (tests/conftest.py).
  cache, local = tiny_cache, tiny_uninterrupted
  workdir = f"gs://{BUCKET}/tiny"
  killed = _tiny(workdir, cache, emulator)
  deadline = time.time() + 300
  while killed.poll() is None and time.time() < deadline:
    if any(n.startswith("tiny/checkpoints/15/") for n in _names(emulator, "tiny/checkpoints/")):
      break
    time.sleep(0.2)
  killed.send_signal(signal.SIGKILL)
  _, err = killed.communicate(timeout=60)
  assert _object(emulator, "tiny/results.json") is None, "finished before the kill: " + err[-2000:]
  assert _object(emulator, ".lock") is None  # the lease is in the workdir, not the bucket root

  resumed = _tiny(workdir, cache, emulator)
  out, err = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, err[-3000:]
  assert "resuming from step " in out and f"({workdir}/checkpoints/" in out

  bucket_results = json.loads(_object(emulator, "tiny/results.json"))
  local_results = json.loads((local / "results.json").read_text())
  assert _figures(bucket_results) == _figures(local_results)
  rows = [json.loads(r) for r in _object(emulator, "tiny/metrics.jsonl").decode().splitlines()]
  local_rows = [json.loads(r) for r in (local / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [r["step"] for r in local_rows]  # none lost or doubled
  assert [r["loss"] for r in rows] == [r["loss"] for r in local_rows]
  names = _names(emulator, "tiny/")
  assert any(n.startswith("tiny/tensorboard/events.out.tfevents.") for n in names)
  assert any(n.startswith(f"tiny/checkpoints/{NUM_STEPS}/") for n in names)
  assert "tiny/.lock" not in names  # released at the end

  # A notebook reads the run back from the bucket.
  code = (
    "from contrastive import saved; r = saved.load('gs://runs/tiny'); "
    "print(r.results['knn_accuracy'], len(r.metrics), r.series('loss')[0][-1], "
    "len(r.provenance))"
  )
  read = subprocess.run(
    [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=_env(emulator)
  )
  assert read.returncode == 0, read.stderr[-3000:]
  knn, count, last, segments = read.stdout.split()
  assert segments == "2"  # the killed segment and the resumed one
  assert float(knn) == local_results["knn_accuracy"] and int(count) == len(local_rows)
  assert int(last) == NUM_STEPS


def test_a_bucket_lease_stops_a_second_run_and_a_stale_one_is_taken_over(emulator):
  code = """
import json, time
from contrastive import locking, paths
first = locking.WorkdirLock("gs://runs/leased")
try:
  locking.WorkdirLock("gs://runs/leased")
except locking.WorkdirBusyError as e:
  print(e)
first.release()
again = locking.WorkdirLock("gs://runs/leased")  # released: free again
again.release()
old = {"holder": "pid 1 on gone", "host": "gone", "pid": 1, "renewed": time.time() - 600}
paths.write_text("gs://runs/leased/.lock", json.dumps(old))
stale = locking.WorkdirLock("gs://runs/leased")  # not renewed for 10 minutes
now = json.loads(paths.read_text("gs://runs/leased/.lock"))
print("took over", now["holder"] != "pid 1 on gone")
stale.release()
"""
  proc = subprocess.run(
    [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=_env(emulator)
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  busy, took = proc.stdout.strip().splitlines()
  assert busy.startswith("gs://runs/leased is in use by pid ") and "lease renewed 0 s ago" in busy
  assert took == "took over True"
