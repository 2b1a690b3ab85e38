"""GPU check: train specs/recs.yaml on one CUDA GPU (bf16-mixed) and on the CPU; record samples/s and GPU use.

    python bench/gpu_check.py [--sessions 20000] [--max-epochs 3] [--out DIR]

Writes gpu_check.json to $OUT (the device machine's output folder) when set, else to bench/results/.
Without CUDA the GPU part is skipped, and said so in the JSON; the exit status stays 0. Everything it
writes (warehouse, ZenML-free training packages) lives in a temporary project folder, never the repo's .rs/.
It runs the same functions `rs run` does: seed_demo -> warehouse query -> split_table -> models.training.train,
on plans compiled with --stack local (CPU) and --stack gpu (stacks/gpu.yaml: local orchestrator, gpus: 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class UtilisationSampler:
    """Samples GPU utilisation and memory every `interval` seconds while training runs (nvidia-smi, else NVML via torch)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (utilisation %, memory used MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.source = "nvidia-smi" if shutil.which("nvidia-smi") else "torch.cuda.utilization"

    def _read(self) -> tuple[float, float] | None:
        if self.source == "nvidia-smi":
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                capture_output=True, text=True, timeout=5,
            )
            if out.returncode != 0 or not out.stdout.strip():
                return None
            util, memory = out.stdout.strip().splitlines()[0].split(",")
            return float(util), float(memory)
        import torch

        try:
            return float(torch.cuda.utilization(0)), float(torch.cuda.memory_reserved(0)) / 2**20
        except Exception:  # NVML missing: no samples, and the JSON says so
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self._read()
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(self.interval)

    def __enter__(self) -> UtilisationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def summary(self) -> dict[str, Any]:
        utils = [u for u, _ in self.samples]
        busy = [u for u in utils if u > 0]  # leaves out set-up and tear-down before the first kernel
        return {
            "source": self.source,
            "samples": len(utils),
            "utilisation_mean_pct": round(statistics.fmean(utils), 1) if utils else None,
            "utilisation_mean_busy_pct": round(statistics.fmean(busy), 1) if busy else None,
            "utilisation_max_pct": max(utils) if utils else None,
            "memory_used_max_mib": max(m for _, m in self.samples) if self.samples else None,
        }


def prepare(project: Path, sessions: int) -> None:
    os.environ["RS_PROJECT_DIR"] = str(project)
    os.environ["RS_STACKS_DIR"] = str(REPO / "stacks")
    from rscale.paths import use_project_state

    use_project_state()
    from rscale.compiler.stack import DuckDBWarehouse
    from rscale.data.seed import seed_demo

    seed_demo(DuckDBWarehouse(path=str(project / ".rs" / "warehouse.duckdb")), sessions=sessions)


def compile_plan(stack: str, overrides: list[str]) -> Any:
    from rscale.compiler.compilation import compile_spec

    return compile_spec(REPO / "specs" / "recs.yaml", overrides, stack=stack, offline=True).plans[0]


def splits(plan: Any, project: Path) -> tuple[Any, Any]:
    from rscale.compiler.stack import DuckDBWarehouse
    from rscale.data.split import split_table
    from rscale.warehouses import connect

    config = DuckDBWarehouse(path=str(project / ".rs" / "warehouse.duckdb"))
    with connect(config, read_only=True) as warehouse:
        table = warehouse.query_arrow(plan.data.sql)
    parts = split_table(table, plan.split, plan.data.time_column, plan.train.seed)
    train = getattr(parts, "train", None)
    validation = getattr(parts, "validation", None)
    if train is None:
        train, validation = parts[0], parts[1]
    return train, validation


def run(plan: Any, train: Any, validation: Any, workdir: Path) -> dict[str, Any]:
    from rscale.models.training import train as fit

    started = time.perf_counter()
    result = fit(plan, train, validation, workdir, progress=False)
    return {
        "samples_per_second": round(result.samples_per_second, 1),
        "epochs_run": result.epochs_run,
        "train_rows": result.train_rows,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "hardware": plan.hardware.model_dump(mode="json"),
        "last_epoch": result.history[-1] if result.history else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000, help="Demo sessions to seed (rows ~ sessions).")
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256, help="Same batch on CPU and GPU, for a fair ratio.")
    parser.add_argument("--gpu-batch-size", type=int, default=2048, help="A second GPU run at a GPU-sized batch (0: skip).")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    out_dir = args.out or Path(os.environ.get("OUT") or REPO / "bench" / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "check": "gpu_check",
        "python": platform.python_version(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    common = [f"train.max_epochs={args.max_epochs}", "train.early_stopping=null"]
    with tempfile.TemporaryDirectory(prefix="rscale-gpu-check-") as tmp:
        project = Path(tmp)
        prepare(project, args.sessions)
        import torch

        report["torch"] = torch.__version__
        report["cuda_available"] = torch.cuda.is_available()
        cpu_plan = compile_plan("local", [*common, f"train.batch_size={args.batch_size}"])
        train, validation = splits(cpu_plan, project)
        report["rows"] = {"train": train.num_rows, "validation": validation.num_rows}
        if not args.skip_cpu:
            report["cpu"] = run(cpu_plan, train, validation, project / "cpu")
            report["cpu"]["threads"] = torch.get_num_threads()
        if not torch.cuda.is_available():
            report["gpu"] = {"skipped": "no CUDA GPU on this machine"}
        else:
            report["device"] = torch.cuda.get_device_name(0)
            report["gpu_runs"] = []
            batches = [args.batch_size] + ([args.gpu_batch_size] if args.gpu_batch_size else [])
            for batch in batches:
                plan = compile_plan(
                    "gpu", [*common, "train.gpus=1", "train.precision=bf16-mixed", f"train.batch_size={batch}"]
                )
                torch.cuda.reset_peak_memory_stats(0)
                with UtilisationSampler() as sampler:
                    outcome = run(plan, train, validation, project / f"gpu-{batch}")
                outcome["batch_size"] = batch
                outcome["gpu"] = sampler.summary()
                outcome["torch_max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated(0) / 2**20, 1)
                report["gpu_runs"].append(outcome)
            report["gpu"] = report["gpu_runs"][0]
            if "cpu" in report:
                report["gpu_over_cpu_same_batch"] = round(
                    report["gpu"]["samples_per_second"] / report["cpu"]["samples_per_second"], 2
                )
    path = out_dir / "gpu_check.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
