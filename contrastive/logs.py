"""Training logs: JSON lines and TensorBoard event files in the workdir, a progress line.

Metrics reach the host only when logged, and the loop logs the *previous* logged
step's metrics after dispatching the next step, so the device never waits on a
transfer.
"""

import itertools
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time

from contrastive import paths


def read_metrics(workdir: str) -> list[dict]:
  """The rows of WORKDIR/metrics.jsonl ({"step": s, **metrics}); [] if there is none."""
  path = paths.path(workdir, "metrics.jsonl")
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricWriter:
  """Appends {"step": s, **metrics} to WORKDIR/metrics.jsonl and TensorBoard events.

  In a bucket (`gs://`), where objects cannot be appended to, the rows and events
  are kept here and written out whole at each `flush` (the trainer flushes at every
  checkpoint): after a preemption the rows since the last checkpoint are missing,
  and the resumed run logs them again from that checkpoint, so none is lost.
  """

  def __init__(
    self, workdir: str, *, tensorboard: bool = True, resume_step: int = 0, enabled: bool = True
  ):
    """Opens the log; rows after `resume_step` (logged after the checkpoint a run
    resumes from, so about to be logged again) are dropped. A writer that is not
    `enabled` (processes other than 0) writes nothing."""
    self.enabled = enabled
    self._rows = []
    self._tb = self._tb_dir = None
    if not enabled:
      return
    self._workdir = workdir
    self._remote = paths.is_remote(workdir)
    paths.makedirs(workdir)
    self._rows = [r for r in read_metrics(workdir) if r["step"] <= resume_step]
    self._write_rows()  # the kept rows, whole
    self._jsonl = None
    if not self._remote:
      self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")  # noqa: SIM115
    if tensorboard:
      # Local events are written in place; a bucket's are staged here and uploaded.
      self._tb_dir = tempfile.mkdtemp(prefix="tensorboard-") if self._remote else None
      self._tb = _events(self._tb_dir or os.path.join(workdir, "tensorboard"))

  def write(self, step: int, scalars: dict, histograms: dict | None = None) -> None:
    """A row of `scalars` (metrics.jsonl and TensorBoard); `histograms` (name ->
    array of values, e.g. the per-sample temperatures) go to TensorBoard only."""
    row = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
    if not self.enabled:
      return
    self._rows.append(row)
    if self._jsonl is not None:
      self._jsonl.write(json.dumps(row) + "\n")
      self._jsonl.flush()
    if self._tb is not None:
      self._tb.write(int(step), scalars, histograms or {})

  def flush(self) -> None:
    """Makes what was written durable: a no-op locally (every row is appended as it
    comes); in a bucket, uploads metrics.jsonl and the event files whole."""
    if not self.enabled or not self._remote:
      return
    if self._tb is not None:
      self._tb.flush()
    self._upload()

  def _write_rows(self) -> None:
    paths.write_text(
      paths.path(self._workdir, "metrics.jsonl"), "".join(json.dumps(r) + "\n" for r in self._rows)
    )

  def _upload(self) -> None:
    self._write_rows()
    if self._tb_dir is not None:
      paths.upload(self._tb_dir, paths.path(self._workdir, "tensorboard"))

  def last_value(self, key: str) -> float:
    """The most recent logged value of `key` (NaN if never logged)."""
    return next((r[key] for r in reversed(self._rows) if key in r), float("nan"))

  def close(self) -> None:
    if not self.enabled:
      return
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()
    if self._remote:
      self._upload()
      if self._tb_dir is not None:
        shutil.rmtree(self._tb_dir, ignore_errors=True)


def first_line(error: Exception, limit: int = 160) -> str:
  """An exception's message in one line of at most `limit` characters."""
  text = (str(error).strip().splitlines() or [type(error).__name__])[0]
  return text if len(text) <= limit else text[: limit - 3] + "..."


def warn(message: str) -> None:
  """Something legal but surely not meant, or a recoverable fault: one line on stderr,
  "warning: ...", and the run goes on."""
  print(f"warning: {message}", file=sys.stderr)


class Progress:
  """A one-line progress report with rate and ETA: rewritten in place on a terminal;
  to a file or a pipe, a line at most every `interval` seconds, and the last step's."""

  def __init__(
    self,
    total: int,
    start: int = 0,
    stream=sys.stderr,
    enabled: bool = True,
    interval: float = 10.0,
  ):
    self.total, self.start, self.stream, self.enabled = total, start, stream, enabled
    self.t0 = time.perf_counter()
    self.tty = stream.isatty()
    self.interval = interval
    self._last_write = -math.inf

  def update(self, step: int, text: str) -> None:
    if not self.enabled:
      return
    now = time.perf_counter()
    if not self.tty and step < self.total and now - self._last_write < self.interval:
      return
    self._last_write = now
    done = step - self.start
    elapsed = now - self.t0
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (self.total - step) / rate if rate > 0 else math.inf
    eta_text = "?" if math.isinf(eta) else time.strftime("%H:%M:%S", time.gmtime(eta))
    line = f"step {step}/{self.total} {100 * step / self.total:5.1f}% | {text} | ETA {eta_text}"
    self.stream.write(("\r" + line) if self.tty else (line + "\n"))
    self.stream.flush()

  def restart(self, step: int) -> None:
    """Times the rate (and so the ETA) from `step`, now: after the first step, whose
    compilation would otherwise make the first ETAs many times too long."""
    self.start, self.t0 = step, time.perf_counter()

  def close(self) -> None:
    if self.enabled and self.tty:
      self.stream.write("\n")


def _events(logdir: str):
  """A TensorBoard event writer in `logdir` (`_Events`), or None, with a warning line,
  where the `tensorboard` package is not installed (metrics.jsonl is written anyway)."""
  try:
    from tensorboard.compat.proto import event_pb2  # noqa: PLC0415
    from tensorboard.plugins.histogram import summary_v2 as histogram  # noqa: PLC0415
    from tensorboard.plugins.scalar import summary_v2 as scalar  # noqa: PLC0415
    from tensorboard.summary.writer import record_writer  # noqa: PLC0415
  except ImportError:
    warn(
      "no TensorBoard events (the tensorboard package is not installed: pip install "
      "tensorboard); metrics.jsonl has every logged row."
    )
    return None
  return _Events(logdir, record_writer.RecordWriter, event_pb2, scalar, histogram)


_EVENT_FILES = itertools.count()


class _Events:
  """A TensorBoard event file, local (a bucket's is uploaded by `MetricWriter`): the
  summaries `tf.summary.scalar` and `tf.summary.histogram` write (tensor summaries with
  their plugins' metadata), framed by TensorBoard's own record writer. Not TensorBoard's
  `EventFileWriter`: it opens files through `tensorboard.compat.tf`, which imports
  TensorFlow where it is installed (TensorFlow's start-up lines on the console, and
  0.5 GiB more peak memory in the quickstart on 2 CPU cores)."""

  def __init__(self, logdir, record_writer, event_pb2, scalar, histogram):
    os.makedirs(logdir, exist_ok=True)
    # TensorBoard's name, with its per-process count: two writers opened on one logdir
    # in the same second (a run resumed in the same process) never share a file.
    name = (
      f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
      f"{next(_EVENT_FILES)}"
    )
    self._writer = record_writer(open(os.path.join(logdir, name), "wb"))  # noqa: SIM115
    self._event_pb2, self._scalar, self._histogram = event_pb2, scalar, histogram
    self._add(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
    self.flush()

  def _add(self, event) -> None:
    self._writer.write(event.SerializeToString())

  def write(self, step: int, scalars: dict, histograms: dict) -> None:
    now = time.time()
    summaries = [self._scalar.scalar_pb(k, float(v)) for k, v in scalars.items()]
    summaries += [self._histogram.histogram_pb(k, v) for k, v in histograms.items()]
    for summary in summaries:
      self._add(self._event_pb2.Event(wall_time=now, step=step, summary=summary))
    self._writer.flush()

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()
