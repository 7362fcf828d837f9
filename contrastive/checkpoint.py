"""Every Orbax call, in one place: periodic saves, keeping the last few, resume.

The whole `TrainState` (params, BatchNorm statistics, optimizer state, memory bank
and step) is one checkpoint; the data position is the step itself (the batch
order is a function of seed and step), so a resumed run continues exactly where
the saved one stopped. Orbax writes each checkpoint to a temporary directory and
renames it when complete, so a run killed mid-save leaves the previous checkpoints
intact and the workdir is never corrupt.
"""

import os
import signal

import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves every `every` steps (keeping `keep`) and restores the latest."""

  def __init__(self, directory: str, *, every: int, keep: int):
    if every < 1 or keep < 1:
      raise ValueError(f"checkpoint every and keep must be >= 1, got {every}, {keep}.")
    self.every = every
    self._manager = ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, cleanup_tmp_directories=True
      ),
    )

  def restore_latest(self, state):
    """The latest saved state, with `state`'s shapes and shardings; `state` if none."""
    step = self._manager.latest_step()
    if step is None:
      return state
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def save(self, step: int, state) -> None:
    """Saves `state` as step `step` (the loop decides when: every `every` steps,
    at the end, and on SIGTERM)."""
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def close(self) -> None:
    """Waits for pending saves and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()


class StopRequest:
  """Turns SIGTERM (a preemptible TPU's notice) into a flag the loop checks each step."""

  def __init__(self):
    self.requested = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def restore(self) -> None:
    signal.signal(signal.SIGTERM, self._previous)


def read_latest(directory: str):
  """The latest checkpoint under `directory` as a tree of NumPy arrays, and its step.

  For analysis (notebooks, tests): works whatever topology saved it, by restoring
  every array onto this process's first device.
  """
  manager = ocp.CheckpointManager(
    os.path.abspath(directory), item_handlers=ocp.StandardCheckpointHandler()
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
