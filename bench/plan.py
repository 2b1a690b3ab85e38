"""Plan: `rs plan` against a bare `python -c pass`, each a fresh process, on the local stack's DuckDB warehouse.

Goal (issue 17): `rs plan` < 1 s over the bare start on the local stack. It compiles the spec offline, takes
the data fingerprint (one DuckDB query over the tables the spec reads: 20,000 demo sessions here), reads the
run records and the endpoint record, and prices the plan; it imports neither torch nor ZenML. The full run
times it twice: before any run of the use case, and after one real `rs run` (so the prediction, the spec
diff and the measured training speed are all read); `--quick` skips the real run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.compile import BARE, timed
from bench.report import Report

REPO = Path(__file__).resolve().parents[1]
TARGET_OVER_BARE_S = 1.0
RS = "import sys; import rscale.cli.main as m; sys.argv = ['rs', *sys.argv[1:]]; m.main()"
TINY = ["train.max_epochs=1", "model.dim=8", "train.batch_size=256", "evaluate.gate.min_lift=-1.0"]


def _cases(label: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        BARE: [python, "-c", "pass"],
        f"rs validate recs --offline, for reference ({label})": [
            python, "-c", RS, "validate", "specs/recs.yaml", *TINY, "--offline"
        ],
        f"rs plan recs, local ({label})": [python, "-c", RS, "plan", "specs/recs.yaml", *TINY],
        f"rs plan recs --json, local ({label})": [python, "-c", RS, "plan", "specs/recs.yaml", *TINY, "--json"],
        f"rs plan recs, aws 4 GPUs + autoscaling ({label})": [
            python, "-c", RS, "plan", "specs/recs.yaml", "--stack", "aws", "train.gpus=4", "serving.tier=autoscaling",
        ],
    }


def _measure(report: Report, label: str, commands: dict[str, list[str]], env: dict[str, str], repeats: int,
             warm: bool) -> None:
    if warm:
        for command in commands.values():
            timed(command, env)
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):  # interleaved, so background load hits every case alike
        for name, command in commands.items():
            seconds, cpu_seconds = timed(command, env)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    report.row(f"{BARE} ({label})", "s", wall[BARE], cpu_median_s=statistics.median(cpu[BARE]))
    bare_wall, bare_cpu = statistics.median(wall[BARE]), statistics.median(cpu[BARE])
    validate = next(n for n in commands if n.startswith("rs validate"))
    for name in commands:
        if name == BARE:
            continue
        report.row(name, "s", wall[name], cpu_median_s=statistics.median(cpu[name]))
        if name == validate:
            continue
        goal = TARGET_OVER_BARE_S if "local" in name else None
        over_cpu = statistics.median(cpu[name]) - bare_cpu
        report.compare(f"{name}: wall over bare", statistics.median(wall[name]) - bare_wall, goal, unit="s",
                       higher_is_better=False, detail=f"CPU seconds over bare: {over_cpu:.3f}")
        report.compare(f"{name}: CPU over bare", over_cpu, goal, unit="s", higher_is_better=False,
                       detail=f"over rs validate: {statistics.median(cpu[name]) - statistics.median(cpu[validate]):.3f} "
                       "CPU s (the fingerprint, run records, prediction and pricing)")


def run(quick: bool, work: Path) -> Report:
    repeats = 1 if quick else 7
    report = Report("plan", "Plan: rs plan vs bare python start", quick,
                    settings={"repeats": repeats, "sessions": 500 if quick else 20_000, "process": "fresh per run"})
    env = {**os.environ, "RS_PROJECT_DIR": str(work), "RS_STACKS_DIR": str(REPO / "stacks")}
    for name in ("RS_SAGEMAKER_ROLE", "RS_S3_BUCKET", "RS_ECR_URI", "AWS_REGION"):  # aws values as the tests use
        env.setdefault(name, {"RS_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/rscale", "RS_S3_BUCKET": "bucket",
                              "RS_ECR_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                              "AWS_REGION": "us-east-1"}[name])
    seed = subprocess.run([sys.executable, "-c", RS, "seed", "--sessions", str(report.settings["sessions"])],
                          cwd=REPO, env=env, capture_output=True, text=True)
    if seed.returncode != 0:
        raise SystemExit(f"rs seed failed: {seed.stderr[-2000:]}")
    _measure(report, "no run yet", _cases("no run yet"), env, repeats, warm=not quick)
    if not quick:
        ran = subprocess.run([sys.executable, "-m", "rscale.cli.main", "run", "specs/recs.yaml", *TINY],  # ZenML needs a file
                             cwd=REPO, env=env, capture_output=True, text=True)
        subprocess.run([sys.executable, "-c", RS, "undeploy", "recs"], cwd=REPO, env=env, capture_output=True)
        if ran.returncode != 0:
            raise SystemExit(f"rs run failed: {ran.stdout[-2000:]}{ran.stderr[-2000:]}")
        _measure(report, "after a run", _cases("after a run"), env, repeats, warm=True)
    report.notes.append("each figure is a whole process (what a person waits for), medians over interleaved runs; "
                        "the goal applies to the local stack; the aws case adds loading the price table; CPU seconds "
                        "(user + system of the child) are the steadier figure when other processes share the cores")
    return report


def chart(report: Report, path: Path) -> None:
    """Wall and CPU seconds per case (medians, min-max on wall), with the goal line over the bare start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.rows
    names = [r["case"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.2))
    ys = range(len(rows))
    errors = [[r["median"] - r["min"] for r in rows], [r["max"] - r["median"] for r in rows]]
    ax.barh([y - 0.2 for y in ys], [r["median"] for r in rows], height=0.4, xerr=errors, capsize=2,
            color="#90caf9", label="wall s (median, min-max)")
    ax.barh([y + 0.2 for y in ys], [r.get("cpu_median_s", 0.0) for r in rows], height=0.4, color="#1565c0",
            label="CPU s (median)")
    bare = min(r["cpu_median_s"] for r in rows if r["case"].startswith(BARE))
    ax.axvline(bare + TARGET_OVER_BARE_S, color="black", linestyle="--", linewidth=1)
    ax.text(bare + TARGET_OVER_BARE_S, -0.8, " goal: 1 s over bare", fontsize=7)
    ax.set_yticks(list(ys), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per process", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(report.title + (" (quick)" if report.quick else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
