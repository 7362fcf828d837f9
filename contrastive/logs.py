"""Training logs: JSON lines and TensorBoard event files in the workdir, a progress line.

Metrics reach the host only when logged, and the loop logs the *previous* logged
step's metrics after dispatching the next step, so the device never waits on a
transfer.
"""

import json
import math
import os
import sys
import time


class MetricWriter:
  """Appends {"step": s, **metrics} to WORKDIR/metrics.jsonl and TensorBoard events."""

  def __init__(self, workdir: str, *, tensorboard: bool = True):
    os.makedirs(workdir, exist_ok=True)
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")  # noqa: SIM115
    self._tb = None
    if tensorboard:
      import tensorflow as tf  # noqa: PLC0415

      self._tf = tf
      self._tb = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, scalars: dict) -> None:
    row = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      with self._tb.as_default(step=int(step)):
        for k, v in scalars.items():
          self._tf.summary.scalar(k, float(v))
      self._tb.flush()

  def close(self) -> None:
    self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


class Progress:
  """A one-line progress report with rate and ETA, rewritten in place on a terminal."""

  def __init__(self, total: int, start: int = 0, stream=sys.stderr):
    self.total, self.start, self.stream = total, start, stream
    self.t0 = time.perf_counter()
    self.tty = stream.isatty()

  def update(self, step: int, text: str) -> None:
    done = step - self.start
    elapsed = time.perf_counter() - self.t0
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (self.total - step) / rate if rate > 0 else math.inf
    eta_text = "?" if math.isinf(eta) else time.strftime("%H:%M:%S", time.gmtime(eta))
    line = f"step {step}/{self.total} {100 * step / self.total:5.1f}% | {text} | ETA {eta_text}"
    self.stream.write(("\r" + line) if self.tty else (line + "\n"))
    self.stream.flush()

  def close(self) -> None:
    if self.tty:
      self.stream.write("\n")
