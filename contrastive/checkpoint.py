"""Every Orbax call, in one place: periodic saves, keeping the last few, resume.

The whole `TrainState` (params, BatchNorm statistics, optimizer state, memory bank
and step) is one checkpoint; the data position is the step itself (the batch
order is a function of seed and step), so a resumed run continues exactly where
the saved one stopped. Orbax writes each checkpoint to a temporary directory and
renames it when complete, so a run killed mid-save leaves the previous checkpoints
intact. A checkpoint damaged afterwards (a truncated file, a missing part) is set
aside with a one-line warning (renamed N.corrupt, never deleted) and the run resumes
from the newest good one; a checkpoint of another config's state stops the run with
one line (`locking.WorkdirLock` keeps a second process off a workdir in use). Paths may name a
bucket (`gs://`, through `contrastive.paths`), where Orbax writes each checkpoint in
place and marks it complete last; an unmarked one is ignored and later cleaned up.
"""

import errno
import os
import re
import shutil
import signal

import jax
import numpy as np
import orbax.checkpoint as ocp

from contrastive import logs
from contrastive import paths


class CheckpointMismatchError(ValueError):
  """The workdir's latest checkpoint holds a different state (another config's run)."""


class CheckpointWriteError(OSError):
  """A checkpoint could not be written (a full disk, a quota, a read-only or
  unwritable workdir); the checkpoints saved before it are intact."""


# What storage failures say, in an OSError's errno or in TensorStore's message
# ("... No space left on device [os_error_code='28']").
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO)


# Room kept free beside a checkpoint's arrays for Orbax's metadata and the logs.
_SPARE_BYTES = 1 << 20


def storage_failure(error: Exception) -> str | None:
  """The reason (e.g. "No space left on device") if `error` is a failure of the
  storage under a workdir, else None."""
  code = getattr(error, "errno", None)
  if code is None:
    match = re.search(r"os_error_code='(\d+)'", str(error))
    code = int(match.group(1)) if match else None
  return os.strerror(code) if code in _STORAGE_ERRNOS else None


def _shapes(tree) -> dict:
  """{path: shape} of a state or of a checkpoint's metadata, paths as key names."""

  def name(key):
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        return str(getattr(key, attr))
    return str(key)

  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {"/".join(name(k) for k in path): tuple(leaf.shape) for path, leaf in leaves}


class Checkpointer:
  """Saves every `every` steps (keeping `keep`) and restores the latest.

  Saves are synchronous: `save` returns once the checkpoint is complete on disk.
  Orbax's asynchronous saves (0.12.8) raced on this CPU with a streamed dataset's
  input threads busy: in 1 of 3 runs the step's array metadata was looked for
  before it was written ("No ArrayMetadata found ...") and the run died; 0 of 5
  with synchronous saves. Training waits for each save (a fraction of a second for
  a ResNet-50 state on a local disk).
  """

  def __init__(self, directory: str, *, every: int, keep: int):
    if every < 1 or keep < 1:
      raise ValueError(f"checkpoint every and keep must be >= 1, got {every}, {keep}.")
    self.every = every
    self._directory = paths.absolute(directory)
    self._manager = ocp.CheckpointManager(
      self._directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=True,
        cleanup_tmp_directories=True,
        enable_async_checkpointing=False,
      ),
      item_handlers=ocp.StandardCheckpointHandler(),
    )

  @property
  def directory(self) -> str:
    """The absolute directory the checkpoints live in."""
    return self._directory

  def restore_latest(self, state):
    """The newest good saved state, with `state`'s shapes and shardings; `state` if none.

    A checkpoint that cannot be read is set aside (`N.corrupt`, with a warning) and
    the next older one is tried. One that reads but holds a differently shaped
    state raises CheckpointMismatchError: it belongs to another config.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    want = _shapes(abstract)
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        saved = _shapes(self._manager.item_metadata(step))
      except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is skipped
        self._set_aside(step, error)
        continue
      if not saved:
        self._set_aside(step, "no readable metadata")
        continue
      if saved != want:
        raise CheckpointMismatchError(self._mismatch(step, saved, want))
      try:
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as error:  # noqa: BLE001
        self._set_aside(step, error)
    return state

  def _mismatch(self, step, saved, want) -> str:
    path = os.path.join(self._directory, str(step))
    differ = sorted(set(saved) ^ set(want)) or sorted(k for k in want if saved[k] != want[k])
    key = differ[0]
    detail = f"{key}: saved {saved.get(key, 'absent')}, this config {want.get(key, 'absent')}"
    return (
      f"{path} holds a different state than this config builds ({detail}); rerun with "
      "the config that wrote it, or use a new --workdir."
    )

  def _set_aside(self, step: int, error) -> None:
    """Renames a damaged checkpoint N to N.corrupt (process 0) and says so."""
    path = os.path.join(self._directory, str(step))
    aside = path + ".corrupt"
    suffix = 1
    while paths.exists(aside):
      aside, suffix = f"{path}.corrupt{suffix}", suffix + 1
    if jax.process_index() == 0:
      paths.path(path).rename(aside)
    reason = error if isinstance(error, str) else logs.first_line(error)
    logs.warn(
      f"checkpoint {path} is incomplete or corrupt ({reason}); set aside as {aside}, "
      "resuming from an older one."
    )
    self._manager.reload()

  def save(self, step: int, state) -> None:
    """Saves `state` as step `step` (the loop decides when: every `every` steps,
    at the end, and on SIGTERM).

    Raises CheckpointWriteError (one line) when the storage refuses it (a full
    disk, ...): the partial checkpoint is removed, and the ones saved before it,
    which Orbax deletes only after a later save succeeds, are intact.
    """
    need = sum(x.nbytes for x in jax.tree.leaves(state)) // max(jax.process_count(), 1)
    if not paths.is_remote(self._directory):
      free = shutil.disk_usage(self._directory).free
      if free < need + _SPARE_BYTES:  # before Orbax starts: it would log each thread's failure
        self._refuse(step, f"{free / 2**20:.1f} MiB free, the checkpoint needs about "
                           f"{need / 2**20:.1f} MiB")  # fmt: skip
    try:
      self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    except Exception as error:
      reason = storage_failure(error)
      if reason is None:
        raise
      for partial in paths.path(self._directory).glob(f"{step}.orbax-checkpoint-tmp*"):
        try:
          partial.rmtree()  # give the space back
        except OSError:
          pass
      self._refuse(step, reason)

  def _refuse(self, step: int, reason: str):
    latest = self._manager.latest_step()
    kept = "no earlier checkpoint" if latest is None else f"checkpoint {latest} is intact"
    raise CheckpointWriteError(
      f"cannot save checkpoint {step} in {self._directory}: {reason}; {kept}; free space "
      "(or make the workdir writable) and rerun the same command to resume."
    ) from None

  def close(self) -> None:
    """Waits for pending saves and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()


class StopRequest:
  """Turns SIGTERM (a preemptible TPU's notice) and SIGINT (Ctrl-C) into a flag the
  loop checks each step, so either saves a checkpoint and stops. A second Ctrl-C
  before then interrupts at once (KeyboardInterrupt), as a user pressing it twice
  means; the checkpoints saved before stay."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = False
    self.signal = None  # the name of the signal that asked, once one has
    self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

  def _handle(self, signum, frame):
    del frame
    if self.requested and signum == signal.SIGINT:
      self.restore()
      raise KeyboardInterrupt
    self.requested = True
    self.signal = signal.Signals(signum).name
    if signum == signal.SIGINT:
      print("\nCtrl-C: saving a checkpoint after this step (Ctrl-C again to quit now)", flush=True)

  def restore(self) -> None:
    for s, previous in self._previous.items():
      signal.signal(s, previous)


def read_latest(directory: str):
  """The latest checkpoint under `directory` as a tree of NumPy arrays, and its step.

  For analysis (notebooks, tests): works whatever topology saved it, by restoring
  every array onto this process's first device.
  """
  manager = ocp.CheckpointManager(
    paths.absolute(directory), item_handlers=ocp.StandardCheckpointHandler()
  )
  step = manager.latest_step()
  if step is None:
    manager.close()
    raise FileNotFoundError(f"No checkpoint under {directory}.")
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(
    lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), manager.item_metadata(step)
  )
  tree = manager.restore(step, args=ocp.args.StandardRestore(target))
  manager.close()
  return jax.tree.map(np.asarray, tree), step
