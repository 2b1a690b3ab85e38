"""docs/extending.md's worked examples run as written: a custom LightningModule, and a new task.

The doc's `file:` blocks are written into a folder on PYTHONPATH and its `run` blocks run in order in a fresh
process, so the task the doc registers never reaches this test session's registry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- (file: (?P<file>[\w.]+)|run) -->\n```python\n(?P<code>.*?)```", re.S)


def test_the_docs_examples_run(tmp_path: Path) -> None:
    blocks = list(BLOCK.finditer((REPO / "docs" / "extending.md").read_text()))
    files = {m["file"]: m["code"] for m in blocks if m["file"]}
    runs = [m["code"] for m in blocks if not m["file"]]
    assert set(files) == {"my_models.py", "my_tasks.py"} and len(runs) == 2
    library = tmp_path / "lib"
    library.mkdir()
    for name, code in files.items():
        (library / name).write_text(code)
    (tmp_path / "specs").mkdir()
    shutil.copy(REPO / "specs" / "conversion.yaml", tmp_path / "specs")
    script = "import torch\ntorch.set_num_threads(1)\n" + "\n".join(runs) + "\nprint('examples ran')\n"
    (tmp_path / "examples.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(library), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "examples.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().endswith("examples ran")
