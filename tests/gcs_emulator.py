"""A local Cloud Storage emulator for the tests: `python tests/gcs_emulator.py PORT BUCKET`.

Serves the GCS JSON API on 127.0.0.1:PORT (in memory, with BUCKET created) through
gcp-storage-emulator (requirements-test.txt); clients reach it the standard way,
STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT (`contrastive.paths` points TensorStore
there too). The emulator leaves out two things real GCS does and TensorStore, Orbax's
array store, relies on to write safely: a download's `x-goog-generation` header (the
object's generation) and the generation preconditions `ifGenerationMatch` /
`ifGenerationNotMatch` (412 Precondition Failed, or 304 Not Modified on a read).
They are added here, as GCS documents them, before the server is imported.
"""

from http import HTTPStatus
import sys
import threading

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects


def _current_generation(request, storage, name):
  try:
    return int(storage.get_file_obj(request.params["bucket_name"], name)["generation"])
  except NotFound:
    return 0  # GCS: ifGenerationMatch=0 means "the object does not exist"


def _preconditions_fail(request, response, storage, name, *, read: bool) -> bool:
  """Applies ifGenerationMatch / ifGenerationNotMatch; True if the request must stop."""
  match = request.query.get("ifGenerationMatch")
  not_match = request.query.get("ifGenerationNotMatch")
  if not match and not not_match:
    return False
  current = _current_generation(request, storage, name)
  if match and int(match[0]) != current:
    response.status = HTTPStatus.PRECONDITION_FAILED
    response.json({"error": {"code": 412, "message": "Precondition Failed"}})
    return True
  if not_match and int(not_match[0]) == current:
    response.status = HTTPStatus.NOT_MODIFIED if read else HTTPStatus.PRECONDITION_FAILED
    return True
  return False


def _upload_name(request):
  if "name" in request.query:
    return request.query["name"][0]
  data = request.data
  return data.get("meta", {}).get("name") if isinstance(data, dict) else None


_insert, _download, _get, _delete = objects.insert, objects.download, objects.get, objects.delete


def insert(request, response, storage, *args, **kwargs):
  name = _upload_name(request)
  if name and _preconditions_fail(request, response, storage, name, read=False):
    return None
  return _insert(request, response, storage, *args, **kwargs)


def download(request, response, storage, *args, **kwargs):
  name = request.params["object_id"]
  if _preconditions_fail(request, response, storage, name, read=True):
    return None
  generation = _current_generation(request, storage, name)
  if generation:
    response["x-goog-generation"] = str(generation)
    response["x-goog-metageneration"] = "1"
  return _download(request, response, storage, *args, **kwargs)


def get(request, response, storage, *args, **kwargs):
  if _preconditions_fail(request, response, storage, request.params["object_id"], read=True):
    return None
  return _get(request, response, storage, *args, **kwargs)


def delete(request, response, storage, *args, **kwargs):
  if _preconditions_fail(request, response, storage, request.params["object_id"], read=False):
    return None
  return _delete(request, response, storage, *args, **kwargs)


objects.insert, objects.download, objects.get, objects.delete = insert, download, get, delete

from gcp_storage_emulator import server as emulator_server  # noqa: E402 - after the patches

if __name__ == "__main__":
  port, bucket = int(sys.argv[1]), sys.argv[2]
  # One request at a time, as the emulator serves them; a deep accept queue so that
  # TensorStore's parallel requests wait instead of being refused.
  emulator_server.server.HTTPServer.request_queue_size = 256
  server = emulator_server.create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
  server.start()  # returns once the socket is bound and listening
  print("ready", flush=True)
  threading.Event().wait()
