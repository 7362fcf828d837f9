"""Files under a workdir, on a local disk or in a Cloud Storage bucket (`gs://...`).

Every file the project reads or writes under WORKDIR (checkpoints, metrics.jsonl,
TensorBoard events, results.json, sweep.json, reports and figures) goes through
here or through Orbax, which uses the same path type (`etils.epath`). So
`--workdir=gs://BUCKET/DIR` works on a Cloud TPU VM, where a bucket is the one
place every host sees and the one that survives preemption.

Bucket paths go through gcsfs (epath's fsspec backend; `EPATH_USE_TF=false` unless
the environment says otherwise) and Orbax's arrays through TensorStore. With
`STORAGE_EMULATOR_HOST` set (a local Cloud Storage emulator, as in the tests), both
are pointed at it: TensorStore through `TENSORSTORE_GCS_HTTP_URL` and a test token.

Object stores cannot append to or rename a file in place, so writes here replace
a whole file at once: a reader sees the old file or the new one, never half.
"""

import logging
import os
import tempfile

from etils import epath


def _configure() -> None:
  """Points epath, gcsfs and TensorStore at the same storage (idempotent)."""
  os.environ.setdefault("EPATH_USE_TF", "false")
  host = os.environ.get("STORAGE_EMULATOR_HOST")
  if host:
    url = host if "://" in host else f"http://{host}"
    os.environ.setdefault("TENSORSTORE_GCS_HTTP_URL", url)
    os.environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")
    # The emulator has no storage-control API (bucket layouts, moveTo): gcsfs would
    # warn at every call before falling back to what the emulator serves.
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    logging.getLogger("gcsfs").setLevel(logging.ERROR)


_configure()


def is_remote(path) -> bool:
  """Whether `path` names an object store (`gs://...`) rather than a local file."""
  return "://" in os.fspath(path)


def path(*parts) -> epath.Path:
  """`parts` joined as an `epath.Path` (local, or `gs://` for a bucket)."""
  _configure()
  return epath.Path(*[os.fspath(p) for p in parts])


def absolute(p) -> str:
  """`p` made absolute: a bucket path as it is, a local one from the working dir."""
  p = os.fspath(p)
  return p if is_remote(p) else os.path.abspath(p)


def exists(p) -> bool:
  return path(p).exists()


def is_dir(p) -> bool:
  return path(p).is_dir()


def makedirs(p) -> None:
  path(p).mkdir(parents=True, exist_ok=True)


def read_text(p) -> str:
  return path(p).read_text()


def write_bytes(p, data: bytes) -> None:
  """Writes `data` to `p` whole: locally through a temporary file renamed into
  place, in a bucket as one upload (an object appears complete or not at all)."""
  p = path(p)
  if is_remote(p):
    p.write_bytes(data)
    return
  p.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
  with os.fdopen(fd, "wb") as f:
    f.write(data)
  umask = os.umask(0)  # read it back: mkstemp's files are private (0600), a plain file is not
  os.umask(umask)
  os.chmod(tmp, 0o666 & ~umask)
  os.replace(tmp, p)


def write_text(p, text: str) -> None:
  """`write_bytes` of `text` in UTF-8."""
  write_bytes(p, text.encode("utf-8"))


def upload(local_dir: str, remote_dir) -> None:
  """Copies every file under `local_dir` to the same place under `remote_dir`."""
  for root, _, files in os.walk(local_dir):
    for name in files:
      rel = os.path.relpath(os.path.join(root, name), local_dir)
      with open(os.path.join(root, name), "rb") as f:
        write_bytes(path(remote_dir, rel), f.read())


def cache_dir() -> str:
  """The project's cache on this machine (generated datasets, compiled programs):
  $CONTRASTIVE_CACHE, else ~/.cache/contrastive."""
  return os.environ.get("CONTRASTIVE_CACHE") or os.path.join(
    os.path.expanduser("~"), ".cache", "contrastive"
  )
