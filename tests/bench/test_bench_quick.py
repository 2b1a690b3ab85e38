"""`python -m bench all --quick` runs every benchmark at a tiny size and writes JSON and PNG per benchmark.

Only the shape of the output is asserted: speed is reported by the benchmarks, never asserted in tests.
Results go to a temporary folder, never over the committed bench/results/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is a folder of the repo, not part of the installed package
    sys.path.insert(0, str(REPO))

from bench import BENCHMARKS  # noqa: E402
from bench.report import COMPARISON_KEYS, JSON_KEYS, ROW_KEYS  # noqa: E402


def test_quick_run_writes_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "all", "--quick", "--out", str(out)],
        cwd=REPO, env={**os.environ, "MPLBACKEND": "Agg"}, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in BENCHMARKS:
        data = json.loads((out / f"{name}.json").read_text())
        assert set(JSON_KEYS) <= set(data), name
        assert data["bench"] == name and data["quick"] is True
        assert data["rows"] and data["comparisons"], name
        probe = data["machine"]["speed"]  # the machine's speed at the time, beside the load average
        assert probe["first_touch_us_per_page"] > 0 and probe["bare_python_start_s"] > 0, (name, probe)
        for row in data["rows"]:
            assert set(ROW_KEYS) <= set(row), (name, row)
            assert row["min"] <= row["median"] <= row["max"], (name, row)
        for comparison in data["comparisons"]:
            assert set(COMPARISON_KEYS) <= set(comparison), (name, comparison)
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_committed_results_name_the_goals() -> None:
    # BENCHMARKS.md embeds these: each committed result is a full run with the same keys
    for name in BENCHMARKS:
        path = REPO / "bench" / "results" / f"{name}.json"
        data = json.loads(path.read_text())
        assert set(JSON_KEYS) <= set(data), name
        assert data["quick"] is False, f"{path} holds a quick run; rerun `python -m bench all`"
        assert (REPO / "bench" / "results" / f"{name}.png").exists()
