"""Compile: `rs validate` and `rs compile --offline` against a bare `python -c pass`, each a fresh process.

Goal (DESIGN.md): `rs validate` < 0.3 s over the bare start. Each case runs offline (no data contract, no
warehouse); `rs compile` adds emitting build/<name>/plan.json and pipeline.py. `rs` is invoked through
`rscale.cli.main` with the validate command module imported, so the figure holds whether or not main.py
already imports it.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Report

REPO = Path(__file__).resolve().parents[1]
TARGET_OVER_BARE_S = 0.3
RS = "import sys; import rscale.cli.main as m; import rscale.cli.spec; sys.argv = ['rs', *sys.argv[1:]]; m.main()"
BARE = "python -c pass"


def all_cases() -> dict[str, list[str]]:
    python = sys.executable
    return {
        BARE: [python, "-c", "pass"],
        "rs --help": [python, "-c", RS, "--help"],
        "rs validate recs --offline": [python, "-c", RS, "validate", "specs/recs.yaml", "--offline"],
        "rs validate conversion --offline": [python, "-c", RS, "validate", "specs/conversion.yaml", "--offline"],
        "rs validate recs train.lr=0.01 --offline": [
            python, "-c", RS, "validate", "specs/recs.yaml", "train.lr=0.01", "--offline"
        ],
        "rs compile recs --offline": [python, "-c", RS, "compile", "specs/recs.yaml", "--offline"],
        "rs compile conversion --offline": [python, "-c", RS, "compile", "specs/conversion.yaml", "--offline"],
    }


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system) of the child: steadier on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[3:]) or command}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(quick: bool, work: Path) -> Report:
    repeats = 1 if quick else 9
    report = Report("compile", "Compile: rs validate / rs compile vs bare python start", quick,
                    settings={"repeats": repeats, "offline": True, "process": "fresh per run"})
    env = {**os.environ, "RS_PROJECT_DIR": str(work)}  # rs compile writes build/ here, not in the repo
    commands = all_cases()
    if quick:
        commands = {k: v for k, v in commands.items() if "train.lr" not in k and "conversion" not in k}
    for command in commands.values():  # warm the OS file cache and .pyc files once
        if not quick:
            timed(command, env)
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):  # interleaved, so background load hits every case alike
        for name, command in commands.items():
            seconds, cpu_seconds = timed(command, env)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    for name in commands:
        report.row(name, "s", wall[name], cpu_median_s=statistics.median(cpu[name]))
    bare_wall, bare_cpu = report.median(BARE), statistics.median(cpu[BARE])
    for name in commands:
        if name.startswith("rs validate") or name.startswith("rs compile"):
            goal = TARGET_OVER_BARE_S if name.startswith("rs validate") else None
            report.compare(f"{name}: over bare", report.median(name) - bare_wall, goal, unit="s",
                           higher_is_better=False,
                           detail=f"CPU seconds over bare: {statistics.median(cpu[name]) - bare_cpu:.3f}")
    report.notes.append("each figure is a whole process (what a person waits for), medians over interleaved runs; "
                        "rows carry the child's CPU seconds too, steadier than wall time on a shared machine")
    return report


def chart(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [r["case"] for r in report.rows]
    medians = [r["median"] for r in report.rows]
    errors = [[r["median"] - r["min"] for r in report.rows], [r["max"] - r["median"] for r in report.rows]]
    ax.barh(names, medians, xerr=errors, color=["#9e9e9e"] + ["#1565c0"] * (len(names) - 1), capsize=3)
    bare = report.rows[0]["median"]
    ax.axvline(bare + TARGET_OVER_BARE_S, color="black", linestyle="--", linewidth=1)
    ax.text(bare + TARGET_OVER_BARE_S, -0.6, " goal for validate", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per process (median, min-max)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(report.title + (" (quick)" if report.quick else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

