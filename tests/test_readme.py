"""The README as a newcomer uses it: its API block, pasted into a file elsewhere."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_api_block_runs_from_another_directory(tmp_path):
  readme = open(os.path.join(ROOT, "README.md")).read()
  section = readme[readme.index("## The API") :]
  block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  script = tmp_path / "api.py"
  script.write_text(block)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the install finds it
  proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)  # fmt: skip
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 1 + 4  # uniformity and alignment, then Table 1's four claims
  assert lines[1].startswith("As tau grows")
