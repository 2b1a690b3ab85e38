"""`python -m bench all|NAME [--quick] [--out DIR]`: run benchmarks, print tables, write JSON and PNG charts.

All state (DuckDB warehouse, ZenML store, model packages) lives in one temporary project folder, set before
anything imports ZenML, so nothing touches the repo's .rs/ or the user's home.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    from bench import BENCHMARKS

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["all", *BENCHMARKS], help="which benchmark to run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one or two repeats: a smoke run")
    parser.add_argument("--out", type=Path, default=None,
                        help="where JSON and PNG go (default bench/results/, or a temp folder with --quick)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project folder")
    args = parser.parse_args(argv)

    out = args.out or (Path(tempfile.mkdtemp(prefix="rs-bench-quick-")) if args.quick else RESULTS)
    project = Path(tempfile.mkdtemp(prefix="rs-bench-project-"))
    # one intra-op thread for torch on both sides of every comparison, and in every child process
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    os.environ["RS_PROJECT_DIR"] = str(project)
    for name in [n for n in os.environ if n.startswith("ZENML_")] + ["MLFLOW_TRACKING_URI", "NEPTUNE_DATA_DIRECTORY"]:
        os.environ.pop(name, None)  # a caller's ZenML/MLflow state (e.g. a test session's) is not ours to use
    os.environ.setdefault("RS_STACKS_DIR", str(REPO / "stacks"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    from rscale.paths import use_project_state

    use_project_state()
    from bench.report import print_report, ratio_chart, write_report

    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    failed = []
    started = time.perf_counter()
    try:
        for name in names:
            module = importlib.import_module(BENCHMARKS[name])
            work = project / "bench" / name
            work.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            try:
                report = module.run(args.quick, work)
            except Exception:  # one broken benchmark must not hide the others' figures
                traceback.print_exc()
                failed.append(name)
                continue
            print_report(report)
            path = write_report(report, out)
            getattr(module, "chart", ratio_chart)(report, out / f"{name}.png")
            print(f"{name}: {time.perf_counter() - t0:.1f} s -> {path}", flush=True)
    finally:
        if args.keep:
            print(f"project kept at {project}")
        else:
            shutil.rmtree(project, ignore_errors=True)
    print(f"total {time.perf_counter() - started:.1f} s; results in {out}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
