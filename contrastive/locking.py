"""The workdir lock: one run per workdir (`WorkdirLock`), on a disk and in a bucket.

A second process that starts in a workdir in use stops with one line naming the
first (`WorkdirBusyError`); a crashed or preempted run never leaves its workdir
stuck; an unwritable workdir fails first, in one line (`WorkdirUnwritableError`).
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket
import threading
import time

from contrastive import logs
from contrastive import paths


class WorkdirBusyError(RuntimeError):
  """Another process is running in the same workdir (`holder` says which)."""

  holder = "another process"


class WorkdirUnwritableError(OSError):
  """The workdir cannot be created or written."""


def _unwritable(workdir, error) -> WorkdirUnwritableError:
  reason = getattr(error, "strerror", None) or logs.first_line(error)
  return WorkdirUnwritableError(
    f"cannot write to the workdir {workdir}: {reason}; choose a writable --workdir."
  )


def _busy(workdir, holder, detail="") -> WorkdirBusyError:
  error = WorkdirBusyError(
    f"{workdir} is in use by {holder}{detail}; wait for that run to end or stop it, or "
    "use another --workdir."
  )
  error.holder = holder
  return error


def _dead_here(lease: dict) -> bool:
  """Whether a lease's holder ran on this host and its process is gone (killed)."""
  if lease.get("host") != socket.gethostname() or "pid" not in lease:
    return False
  try:
    os.kill(int(lease["pid"]), 0)
  except ProcessLookupError:
    return True
  except OSError:  # exists, another user's
    return False
  return False


class WorkdirLock:
  """An exclusive lock on a workdir for one run: a second process stops with one
  line naming the first, and a crashed run never leaves it stuck.

  On a disk it locks WORKDIR/.lock with flock (local and NFS disks), which the
  kernel releases when its process ends, however it ends; the file says who holds
  it. A bucket (`gs://`) has no locks: there WORKDIR/.lock is a lease that a thread
  renews every LEASE_S / 4 seconds; a lease not renewed for LEASE_S seconds (its run
  was killed or preempted), or held by a process of this host that no longer exists,
  is taken over, so a rerun after preemption never waits more than LEASE_S (two
  runs started within the same second may both take it: a lease, not a lock).
  Creating the workdir happens here, so an unwritable one fails first, in one line
  (WorkdirUnwritableError).
  """

  LEASE_S = 120

  def __init__(self, workdir: str):
    self._file = None
    self._lease = None
    self._stop = threading.Event()
    started = datetime.datetime.now().isoformat(timespec="seconds")
    self._holder = f"pid {os.getpid()} on {socket.gethostname()} (since {started})"
    if paths.is_remote(workdir):
      self._take_lease(workdir)
      return
    path = os.path.join(workdir, ".lock")
    while True:
      try:
        os.makedirs(workdir, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held until release()
      except OSError as error:
        raise _unwritable(workdir, error) from None
      try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise _busy(workdir, holder) from None
      # The holder before removes .lock as it releases it: a lock taken on the file it
      # removed is no lock, so take the one now at the path.
      try:
        if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
          break
      except FileNotFoundError:
        pass
      handle.close()
    self._path = path
    handle.seek(0)
    handle.truncate()
    handle.write(self._holder + "\n")
    handle.flush()
    self._file = handle

  def _take_lease(self, workdir: str) -> None:
    lease = paths.path(workdir, ".lock")
    try:
      held = json.loads(lease.read_text()) if lease.exists() else None
    except (OSError, ValueError):
      held = None  # unreadable: no valid lease
    if held is not None:
      age = time.time() - float(held.get("renewed", 0))
      if age < self.LEASE_S and not _dead_here(held):
        detail = (
          f" (lease renewed {age:.0f} s ago; one not renewed for {self.LEASE_S} s is taken over)"
        )
        raise _busy(workdir, held.get("holder", "another process"), detail)
    try:
      paths.makedirs(workdir)
      self._renew(lease)
    except Exception as error:  # noqa: BLE001 - any storage error: the workdir is unusable
      raise _unwritable(workdir, error) from None
    self._lease = lease
    self._thread = threading.Thread(target=self._keep, daemon=True, name="workdir-lease")
    self._thread.start()

  def _renew(self, lease) -> None:
    lease_data = {
      "holder": self._holder,
      "host": socket.gethostname(),
      "pid": os.getpid(),
      "renewed": time.time(),
    }
    paths.write_text(lease, json.dumps(lease_data))

  def _keep(self) -> None:
    while not self._stop.wait(self.LEASE_S / 4):
      try:
        self._renew(self._lease)
      except Exception as error:  # noqa: BLE001 - keep training; say it once per failure
        logs.warn(f"could not renew the lease {self._lease}: {logs.first_line(error)}")

  def release(self) -> None:
    """Releases the lock; on a disk WORKDIR/.lock goes too (removed while still held, so
    no process can take the removed file's lock and think it holds the workdir)."""
    if self._file is not None:
      with contextlib.suppress(FileNotFoundError):
        os.unlink(self._path)
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()
      self._file = None
    if self._lease is not None:
      self._stop.set()
      self._thread.join()
      self._lease.unlink(missing_ok=True)
      self._lease = None


class NoLock:
  """What processes other than 0 hold: nothing (process 0 locks the shared workdir)."""

  def release(self) -> None:
    pass
