"""Compile: `rs validate` and `rs compile --offline` against a bare `python -c pass`, each a fresh process.

Goal (DESIGN.md): `rs validate` < 0.3 s over the bare start offline (no data contract, no warehouse), and
< 0.5 s with the data contract (the warehouse is asked for the query's columns: a small seeded DuckDB file);
`rs compile` adds emitting build/<name>/plan.json and pipeline.py. `rs` is invoked through `rscale.cli.main`
with the validate command module imported, so the figure holds whether or not main.py imports it.

Children run with bytecode caching on (PYTHONDONTWRITEBYTECODE removed from their environment), so the warm-up
run writes rscale's .pyc files as installing the package does; without them each start compiles rscale's
modules from source again. The warm-up also fills `.rs/cache/sql/` in the work folder, as any earlier compile
of the same query does; the "first compile" case runs with that cache emptied before each run.

Machine-speed reference. This machine is shared and its speed drifts from day to day (a bare `python -c pass`
has taken 0.021 s on one day and 0.03 to 0.054 s on another, for the same interpreter), so a figure in seconds
from one day cannot be held against another day's. Each run therefore also times a fixed child,
`python -c "import pydantic, typer, rich.console, ruamel.yaml"`: the third-party libraries `rs validate` loads,
and none of rscale's code, so its cost moves with the machine (and with those libraries' versions, which
`uv.lock` pins) but never with a change to rscale. Its CPU seconds over bare are reported as their own row,
and each `rs validate` goal row also gives the case's CPU seconds over bare as a multiple of the reference's:
two runs on machines (or days) of different speed compare by that multiple, not by seconds.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Report

REPO = Path(__file__).resolve().parents[1]
TARGET_OVER_BARE_S = 0.3
TARGET_CONTRACT_OVER_BARE_S = 0.5
CONTRACT = "rs validate recs (data contract)"
FIRST = "rs validate recs --offline, first compile"
RS = "import sys; import rscale.cli.main as m; import rscale.cli.spec; sys.argv = ['rs', *sys.argv[1:]]; m.main()"
BARE = "python -c pass"
REFERENCE = "reference: pydantic, typer, rich, ruamel"  # the exact child: REFERENCE_CODE
REFERENCE_CODE = "import pydantic, typer, rich.console, ruamel.yaml"
IN_REFERENCES = ("rs validate recs --offline", CONTRACT)  # also reported as a multiple of the reference


def all_cases() -> dict[str, list[str]]:
    python = sys.executable
    return {
        BARE: [python, "-c", "pass"],
        REFERENCE: [python, "-c", REFERENCE_CODE],
        "rs --help": [python, "-c", RS, "--help"],
        "rs validate recs --offline": [python, "-c", RS, "validate", "specs/recs.yaml", "--offline"],
        FIRST: [python, "-c", RS, "validate", "specs/recs.yaml", "--offline"],
        CONTRACT: [python, "-c", RS, "validate", "specs/recs.yaml"],
        "rs validate conversion --offline": [python, "-c", RS, "validate", "specs/conversion.yaml", "--offline"],
        "rs validate recs train.lr=0.01 --offline": [
            python, "-c", RS, "validate", "specs/recs.yaml", "train.lr=0.01", "--offline"
        ],
        "rs compile recs --offline": [python, "-c", RS, "compile", "specs/recs.yaml", "--offline"],
        "rs compile conversion --offline": [python, "-c", RS, "compile", "specs/conversion.yaml", "--offline"],
    }


def timed(command: list[str], env: dict[str, str], fresh_cache: Path | None = None) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system) of the child: steadier on a shared machine.
    `fresh_cache`: a folder emptied first (the transpile cache, for a first compile)."""
    if fresh_cache is not None:
        shutil.rmtree(fresh_cache, ignore_errors=True)
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
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: rscale's modules load from .pyc files
    seeded = subprocess.run([sys.executable, "-c", RS, "seed", "--sessions", "500"], cwd=REPO, env=env,
                            capture_output=True, text=True)  # the warehouse the data contract asks
    if seeded.returncode != 0:
        raise SystemExit(f"rs seed failed: {seeded.stderr[-2000:]}")
    first = work / "first-compile"  # its own project folder: emptying its cache leaves the other cases' alone
    first.mkdir(exist_ok=True)
    envs = {FIRST: {**env, "RS_PROJECT_DIR": str(first)}}
    fresh = {FIRST: first / ".rs" / "cache" / "sql"}
    commands = all_cases()
    if quick:
        commands = {k: v for k, v in commands.items() if "train.lr" not in k and "conversion" not in k}
    for name, command in commands.items():  # warm the OS file cache and .pyc files once
        if not quick:
            timed(command, envs.get(name, env), fresh.get(name))
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):  # interleaved, so background load hits every case alike
        for name, command in commands.items():
            seconds, cpu_seconds = timed(command, envs.get(name, env), fresh.get(name))
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    for name in commands:
        report.row(name, "s", wall[name], cpu_median_s=statistics.median(cpu[name]))
    bare_wall, bare_cpu = report.median(BARE), statistics.median(cpu[BARE])
    reference_cpu = statistics.median(cpu[REFERENCE]) - bare_cpu  # the machine's speed today, in CPU seconds
    report.compare(f"{REFERENCE}: CPU over bare", reference_cpu, None, unit="s", higher_is_better=False,
                   detail="a fixed child that no rscale change moves: the machine-speed reference")
    for name in commands:
        if name.startswith("rs validate") or name.startswith("rs compile"):
            goal = TARGET_CONTRACT_OVER_BARE_S if name == CONTRACT else (
                TARGET_OVER_BARE_S if name.startswith("rs validate") else None)
            cpu_over = statistics.median(cpu[name]) - bare_cpu
            multiple = cpu_over / reference_cpu if reference_cpu > 0 else float("nan")
            report.compare(f"{name}: over bare", report.median(name) - bare_wall, goal, unit="s",
                           higher_is_better=False,
                           detail=f"CPU seconds over bare: {cpu_over:.3f} ({multiple:.2f} x the reference's)")
            if name in IN_REFERENCES:
                report.compare(f"{name}: CPU over bare, x reference", multiple, None, unit="x", higher_is_better=False,
                               detail=f"{cpu_over:.3f} s / {reference_cpu:.3f} s")
    report.notes.append("each figure is a whole process (what a person waits for), medians over interleaved runs; "
                        "rows carry the child's CPU seconds too, steadier than wall time on a shared machine")
    report.notes.append("children load rscale from .pyc files (as installed) and find the query's transpilation in "
                        f".rs/cache/sql/ (kept by any earlier compile of it), except `{FIRST}`, which starts "
                        "without that cache and imports and runs sqlglot")
    report.notes.append(f"`{REFERENCE}` is the machine-speed reference (`python -c \"{REFERENCE_CODE}\"`): runs "
                        "on days of different machine speed compare by the `x reference` rows, not by seconds")
    return report


def chart(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [r["case"] for r in report.rows]
    medians = [r["median"] for r in report.rows]
    errors = [[r["median"] - r["min"] for r in report.rows], [r["max"] - r["median"] for r in report.rows]]
    ax.barh(names, medians, xerr=errors, color=["#9e9e9e" if n in (BARE, REFERENCE) else "#1565c0" for n in names], capsize=3)
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

