"""Runs the notebooks as a user opens them (the kernel started in notebooks/) and saves
them with their outputs, so they can be read before they are run:

  python notebooks/execute.py /tmp/contrastive/quickstart

The argument is the finished run `workdir.ipynb` looks at (default: its own default,
the quickstart's workdir; a run with its checkpoints, for the embedding). Needs the
test requirements (nbclient, ipykernel). tests/test_notebooks.py runs the same
`execute` on fresh copies and checks that the committed notebooks hold outputs.
"""

import os
import sys

from nbclient import NotebookClient
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = ("loss_analysis.ipynb", "workdir.ipynb")


def execute(name: str, env: dict | None = None, timeout: int = 300) -> nbformat.NotebookNode:
  """The notebook `name` of this folder, executed in a fresh kernel started here, with
  `env` set in the kernel's environment (a value None: the variable unset)."""
  nb = nbformat.read(os.path.join(HERE, name), as_version=4)
  old = {k: os.environ.get(k) for k in env or {}}
  for k, v in (env or {}).items():  # the kernel inherits this process's environment
    if v is None:
      os.environ.pop(k, None)
    else:
      os.environ[k] = v
  try:
    NotebookClient(
      nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": HERE}}
    ).execute()
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  return nb


def main(argv) -> int:
  env = {"CONTRASTIVE_WORKDIR": argv[1]} if len(argv) > 1 else {}
  for name in NOTEBOOKS:
    nb = execute(name, env)
    nbformat.write(nb, os.path.join(HERE, name))
    print(f"executed and saved {os.path.join(HERE, name)}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
