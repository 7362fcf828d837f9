"""Where the test suite's CPU goes: every Python process it starts, and the XLA compiles
of each test (its own and its subprocesses').

  python benchmarks/suite_profile.py [--json PATH] [--top N] [-- PYTEST ARGS]

Runs pytest (default: the arguments of the README's test command, as CI runs it) with a
`sitecustomize` hook on PYTHONPATH that every Python process of the run imports: it records the
process's command, CPU time and the test it ran under (`PYTEST_CURRENT_TEST`, inherited
by a test's subprocesses), and writes JAX's compile log (its DEBUG records, to a file
only: the console stays as it is) with that test beside each line. Then prints the
processes' CPU by kind, and the tests by compile time. A process that replaces
PYTHONPATH (tests/test_install.py's installed copy, a sweep run with PYTHONPATH set) or
is killed (SIGKILL) goes unrecorded. Compile times are wall seconds of the compiling
thread, so they grow with the machine's load; CPU times do not.
"""

import argparse
import collections
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HOOK = """
import atexit, json, logging, os, sys
_DIR = os.environ["SUITE_PROFILE_DIR"]


class _Test(logging.Filter):
  def filter(self, record):
    record.test = os.environ.get("PYTEST_CURRENT_TEST", "-").replace(" ", "_")
    return True


_handler = logging.FileHandler(os.path.join(_DIR, f"{os.getpid()}.log"), delay=True)
_handler.addFilter(_Test())
_handler.setFormatter(logging.Formatter("%(test)s %(message)s"))
for _name in ("jax._src.dispatch", "jax._src.interpreters.pxla"):
  _logger = logging.getLogger(_name)
  _logger.setLevel(logging.DEBUG)
  _logger.propagate = False  # the file only
  _logger.addHandler(_handler)


@atexit.register
def _record():
  t = os.times()
  with open(os.path.join(_DIR, f"{os.getpid()}.json"), "w") as f:
    json.dump({"argv": sys.argv, "cpu_s": t.user + t.system,
               "test": os.environ.get("PYTEST_CURRENT_TEST", "")}, f)
"""

_COMPILE = re.compile(r"^(\S+) Finished XLA compilation of (.*) in ([0-9.e+-]+) sec")


def readme_pytest_args() -> list[str]:
  """The pytest arguments of the README's test command (its second code block, which
  .ci/run runs)."""
  with open(os.path.join(ROOT, "README.md")) as f:
    blocks = re.findall(r"^```sh\n(.*?)^```", f.read(), re.S | re.M)
  return shlex.split(blocks[1].split("python -m pytest", 1)[1])


def test_name(current: str) -> str:
  """A test's id without its phase: 'tests/a.py::test_b[c]_(call)' -> 'a.py::test_b'
  (parametrized cases summed; the phase's suffix as the hook writes it)."""
  name = re.sub(r"_\((setup|call|teardown)\)$", "", current).removeprefix("tests/")
  return re.sub(r"\[.*\]$", "", name)


def kind(record: dict) -> str:
  """What a process was: pytest itself, a pytest-xdist worker (`python -c`, no test of its
  own when it exits), a test's `python -c`, or the script or module it ran."""
  argv = record["argv"]
  if argv in (["-c"], []):
    return "a test's python -c" if record["test"] else "pytest worker"
  if "pytest" in argv[0]:
    return "pytest"
  return os.path.relpath(argv[0], ROOT) if argv[0].startswith(ROOT) else os.path.basename(argv[0])


def summarize(directory: str) -> dict:
  """The hook's records in `directory` -> {"processes": rows by kind, "tests": rows
  by test}, each sorted by its largest figure first."""
  kinds = collections.defaultdict(lambda: {"processes": 0, "cpu_s": 0.0})
  for path in glob.glob(os.path.join(directory, "*.json")):
    with open(path) as f:
      record = json.load(f)
    row = kinds[kind(record)]
    row["processes"] += 1
    row["cpu_s"] += record["cpu_s"]
  tests = collections.defaultdict(lambda: {"compiles": 0, "compile_s": 0.0, "programs": {}})
  for path in glob.glob(os.path.join(directory, "*.log")):
    with open(path, errors="replace") as f:
      for line in f:
        match = _COMPILE.match(line)
        if match:
          row = tests[test_name(match.group(1))]
          row["compiles"] += 1
          row["compile_s"] += float(match.group(3))
          programs = row["programs"]
          programs[match.group(2)] = programs.get(match.group(2), 0.0) + float(match.group(3))
  for row in tests.values():  # each test's three costliest programs
    top = sorted(row["programs"].items(), key=lambda kv: -kv[1])[:3]
    row["programs"] = {name: round(s, 1) for name, s in top}
    row["compile_s"] = round(row["compile_s"], 1)
  process_rows = [{"kind": k, **v, "cpu_s": round(v["cpu_s"], 1)} for k, v in kinds.items()]
  return {
    "processes": sorted(process_rows, key=lambda r: -r["cpu_s"]),
    "tests": sorted(({"test": k, **v} for k, v in tests.items()), key=lambda r: -r["compile_s"]),
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--json", help="Write the summary here (benchmarks/results/...).")
  parser.add_argument("--top", type=int, default=25, help="Tests to print (default 25).")
  parser.add_argument("pytest_args", nargs="*", help="After --: pytest's arguments.")
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as directory:
    hook = os.path.join(directory, "hook")
    records = os.path.join(directory, "records")
    os.makedirs(hook)
    os.makedirs(records)
    with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
      f.write(HOOK)
    path = os.pathsep.join(p for p in (hook, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "SUITE_PROFILE_DIR": records}
    pytest_args = args.pytest_args or readme_pytest_args()
    proc = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT, env=env)
    summary = {"pytest_args": pytest_args, "pytest_returncode": proc.returncode,
               **summarize(records)}  # fmt: skip
  total = sum(r["cpu_s"] for r in summary["processes"])
  print(f"\nCPU of the recorded processes: {total:,.0f} s")
  for r in summary["processes"]:
    print(f"{r['cpu_s']:8.1f} s  {r['processes']:4d} x  {r['kind']}")
  compile_total = sum(r["compile_s"] for r in summary["tests"])
  print(f"\nXLA compiles by test (wall seconds; all tests: {compile_total:,.0f} s)")
  for r in summary["tests"][: args.top]:
    top = ", ".join(f"{n} {s}" for n, s in r["programs"].items())
    print(f"{r['compile_s']:7.1f} s {r['compiles']:5d}  {r['test']}  ({top})")
  common.write_json(args.json, summary)
  return proc.returncode


if __name__ == "__main__":
  sys.exit(main())
