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
    for name in commands:
        if name == BARE:
            continue
        report.row(name, "s", wall[name], cpu_median_s=statistics.median(cpu[name]))
        report.compare(f"{name}: over bare", statistics.median(wall[name]) - bare_wall,
                       TARGET_OVER_BARE_S if "local" in name else None, unit="s", higher_is_better=False,
                       detail=f"CPU seconds over bare: {statistics.median(cpu[name]) - bare_cpu:.3f}")


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
        ran = subprocess.run([sys.executable, "-c", RS, "run", "specs/recs.yaml", *TINY],
                             cwd=REPO, env=env, capture_output=True, text=True)
        subprocess.run([sys.executable, "-c", RS, "undeploy", "recs"], cwd=REPO, env=env, capture_output=True)
        if ran.returncode != 0:
            raise SystemExit(f"rs run failed: {ran.stdout[-2000:]}{ran.stderr[-2000:]}")
        _measure(report, "after a run", _cases("after a run"), env, repeats, warm=True)
    report.notes.append("each figure is a whole process (what a person waits for), medians over interleaved runs; "
                        "the goal applies to the local stack; the aws case adds loading the price table")
    return report
