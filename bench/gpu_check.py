"""GPU check: train specs/recs.yaml on one CUDA GPU (bf16-mixed) and on the CPU; record samples/s and GPU use.

    python bench/gpu_check.py [--sessions 20000] [--max-epochs 3] [--placements auto,prefetch] [--out DIR]
    python bench/gpu_check.py --scale [--items 1000000] [--scale-sessions 10000000] [--quick]

`--scale` is the size where a GPU matters (issue 18): a generated catalogue of 1M items and 10M sessions,
session_rec's `sasrec` encoder at bf16-mixed under Lightning, batches generated and pinned by DataLoader
worker processes (off the training thread), samples/s measured after warm-up steps, GPU utilisation sampled
throughout, and the same model on every CPU core for the ratio. `--quick` shrinks it to a CPU smoke run.

Writes gpu_check.json to $OUT (the device machine's output folder) when set, else to bench/results/.
Without CUDA the GPU part is skipped, and said so in the JSON; the exit status stays 0. Everything it
writes (warehouse, ZenML-free training packages) lives in a temporary project folder, never the repo's .rs/.
It runs the same functions `rs run` does: seed_demo -> warehouse query -> split_table -> models.training.train,
on plans compiled with --stack local (CPU) and --stack gpu (stacks/gpu.yaml: local orchestrator, gpus: 1).
That product path (the Fabric loop) places its batches as rscale.models.training.DeviceBatches decides: each GPU
run records the placement it used and its GPU utilisation; `--placements` runs the GPU case once per placement
(auto: the loop's own choice, device-resident for the demo; prefetch/device: forced with RS_BATCH_PLACEMENT).
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

from torch.utils.data import IterableDataset

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
    parts = split_table(table, plan.split, plan.data.time_column, plan.train.seed, plan.features.id)
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
        "batch_placement": result.batch_placement,
        "last_epoch": result.history[-1] if result.history else None,
    }


# -- at scale: generated sessions, the sasrec encoder, loading off the training thread -------------------------


class GeneratedSessions:
    """`sessions` sessions over `items` items, generated in fixed chunks by a seeded generator: popularity follows
    a Zipf-like law and each session drifts through neighbouring item ids (so there is order to learn). Held as
    one int32 tensor [sessions, max_len + 1] (10M x 21 x 4 bytes = 0.84 GB), made once; the last real item of
    each row is the target."""

    def __init__(self, items: int, sessions: int, max_len: int, seed: int = 0) -> None:
        import torch

        generator = torch.Generator().manual_seed(seed)
        rows = torch.empty(sessions, max_len + 1, dtype=torch.int32)
        lengths = torch.empty(sessions, dtype=torch.int64)
        chunk = 1_000_000
        for start in range(0, sessions, chunk):
            n = min(chunk, sessions - start)
            rank = (torch.rand(n, generator=generator) ** 3 * (items - 2)).long()  # popular ids first
            steps = torch.randint(-50, 51, (n, max_len + 1), generator=generator).cumsum(dim=1)
            rows[start : start + n] = ((rank[:, None] + steps) % (items - 2) + 2).int()  # 0: padding, 1: OOV
            lengths[start : start + n] = torch.randint(3, max_len + 2, (n,), generator=generator)
        position = torch.arange(max_len + 1)[None, :]
        rows[position >= lengths[:, None]] = 0
        self.rows, self.lengths, self.max_len = rows, lengths, max_len


class SessionBatches(IterableDataset):
    """An iterable over shuffled batches as session_rec reads them ({sequence, lengths, target}), split across
    DataLoader workers, each building whole batches (one tensor index per batch, no per-row Python)."""

    def __init__(self, data: GeneratedSessions, batch_size: int, batches: int, seed: int = 0) -> None:
        super().__init__()
        self.data, self.batch_size, self.batches, self.seed = data, batch_size, batches, seed

    def __iter__(self) -> Any:
        import torch
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        generator = torch.Generator().manual_seed(self.seed + worker)
        total = len(self.data.lengths)
        for _ in range(worker, self.batches, workers):
            index = torch.randint(0, total, (self.batch_size,), generator=generator)
            rows, lengths = self.data.rows[index].long(), self.data.lengths[index]
            history = lengths - 1
            target = rows[torch.arange(self.batch_size), history]
            sequence = rows[:, : self.data.max_len].clone()
            sequence[torch.arange(self.data.max_len)[None, :] >= history[:, None]] = 0
            yield {"sequence": sequence, "lengths": history, "target": target}


class StepTimer:
    """A Lightning callback: wall time of the steps after `warmup` (device synchronised at both ends)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.steps, self.started, self.seconds = warmup, 0, 0.0, 0.0

    def make(self) -> Any:
        import pytorch_lightning as pl
        import torch

        timer = self

        class _Callback(pl.Callback):
            def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
                timer.steps += 1
                if timer.steps == timer.warmup:
                    if torch.cuda.is_available() and module.device.type == "cuda":
                        torch.cuda.synchronize()
                    timer.started = time.perf_counter()

            def on_train_end(self, trainer: Any, module: Any) -> None:
                if torch.cuda.is_available() and module.device.type == "cuda":
                    torch.cuda.synchronize()
                timer.seconds = time.perf_counter() - timer.started

        return _Callback()


def scale_run(data: GeneratedSessions, items: int, device: str, batch_size: int, steps: int, warmup: int,
              workers: int, dim: int, layers: int, heads: int) -> dict[str, Any]:
    """Train session_rec (sasrec) for `steps` batches on `device` ("cuda": bf16-mixed; "cpu": 32-bit, every
    core); samples/s (sessions) over the steps after `warmup`."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader

    from rscale.models.session_rec import SessionRecModel

    config = {
        "model": {"type": "session_rec", "dim": dim, "encoder": "sasrec", "max_len": data.max_len, "dropout": 0.1,
                  "heads": heads, "layers": layers},
        "shapes": {"n_items": items, "target_kind": "ranking", "max_len": data.max_len},
        "optim": {"lr": 0.003, "weight_decay": 0.0},
    }
    model = SessionRecModel(config)
    loader = DataLoader(SessionBatches(data, batch_size, steps), batch_size=None, num_workers=workers,
                        pin_memory=device == "cuda", persistent_workers=False, prefetch_factor=4 if workers else None)
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu", devices=1, precision="bf16-mixed" if device == "cuda" else "32-true",
        max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[timer.make()],
    )
    with UtilisationSampler() if device == "cuda" else _NoSampler() as sampler:
        trainer.fit(model, train_dataloaders=loader)
    measured = max(timer.steps - warmup, 0)
    return {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu",
        "precision": "bf16-mixed" if device == "cuda" else "32-true",
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "steps_measured": measured,
        "seconds": round(timer.seconds, 3),
        "samples_per_second": round(measured * batch_size / timer.seconds, 1) if timer.seconds > 0 else None,
        "gpu": sampler.summary(),
        "torch_max_memory_allocated_mib": round(torch.cuda.max_memory_allocated(0) / 2**20, 1)
        if device == "cuda" else None,
    }


class _NoSampler:
    def __enter__(self) -> _NoSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def summary(self) -> dict[str, Any]:
        return {"skipped": "CPU run"}


def scale_check(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    sizes = {"items": 2_000, "sessions": 5_000, "steps": 6, "warmup": 2, "cpu_steps": 6, "batch": 64} if args.quick else {
        "items": args.items, "sessions": args.scale_sessions, "steps": args.steps, "warmup": args.warmup,
        "cpu_steps": args.cpu_steps, "batch": args.scale_batch_size}
    report: dict[str, Any] = {"check": "gpu_check --scale", "python": platform.python_version(), "torch": torch.__version__,
                              "quick": args.quick, "sizes": sizes, "cuda_available": torch.cuda.is_available()}
    started = time.perf_counter()
    data = GeneratedSessions(sizes["items"], sizes["sessions"], args.max_len)
    report["generate_seconds"] = round(time.perf_counter() - started, 1)
    shape = {"dim": args.dim, "layers": args.layers, "heads": args.heads}
    workers = min(args.workers, os.cpu_count() or 1)
    if torch.cuda.is_available():
        report["gpu"] = scale_run(data, sizes["items"], "cuda", sizes["batch"], sizes["steps"], sizes["warmup"],
                                  workers, **shape)
    else:
        report["gpu"] = {"skipped": "no CUDA GPU on this machine"}
    if not args.skip_cpu:
        torch.set_num_threads(os.cpu_count() or 1)  # every core: the CPU at its best
        cpu_warmup = min(sizes["warmup"], sizes["cpu_steps"] - 1)
        report["cpu"] = scale_run(data, sizes["items"], "cpu", sizes["batch"], sizes["cpu_steps"], cpu_warmup,
                                  workers, **shape)
        if report["gpu"].get("samples_per_second") and report["cpu"].get("samples_per_second"):
            report["gpu_over_cpu"] = round(report["gpu"]["samples_per_second"] / report["cpu"]["samples_per_second"], 1)
    report["goal"] = ">= 80% mean GPU utilisation and >= 5x the CPU's samples/s"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000, help="Demo sessions to seed (rows ~ sessions).")
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256, help="Same batch on CPU and GPU, for a fair ratio.")
    parser.add_argument("--gpu-batch-size", type=int, default=2048, help="A second GPU run at a GPU-sized batch (0: skip).")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--placements", default="auto,prefetch",
                        help="GPU runs' batch placements, comma-separated: auto, device, prefetch.")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--scale", action="store_true", help="The at-scale check (generated 1M items, 10M sessions).")
    parser.add_argument("--quick", action="store_true", help="With --scale: tiny sizes, a CPU smoke run.")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--scale-sessions", type=int, default=10_000_000)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--scale-batch-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=400, help="GPU steps; the first --warmup are not timed.")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--cpu-steps", type=int, default=12)
    parser.add_argument("--workers", type=int, default=6, help="DataLoader worker processes building batches.")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    args = parser.parse_args(argv)

    out_dir = args.out or Path(os.environ.get("OUT") or REPO / "bench" / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.scale:
        scaled = scale_check(args)
        path = out_dir / ("gpu_scale_quick.json" if args.quick else "gpu_scale.json")
        path.write_text(json.dumps(scaled, indent=2) + "\n")
        print(json.dumps(scaled, indent=2))
        print(f"wrote {path}", file=sys.stderr)
        return 0
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
            from rscale.models.training import BATCH_PLACEMENT_ENV

            batches = [args.batch_size] + ([args.gpu_batch_size] if args.gpu_batch_size else [])
            placements = [p.strip() for p in args.placements.split(",") if p.strip()]
            for batch in batches:
                plan = compile_plan(
                    "gpu", [*common, "train.gpus=1", "train.precision=bf16-mixed", f"train.batch_size={batch}"]
                )
                for placement in placements:
                    os.environ[BATCH_PLACEMENT_ENV] = placement
                    torch.cuda.reset_peak_memory_stats(0)
                    try:
                        with UtilisationSampler() as sampler:
                            outcome = run(plan, train, validation, project / f"gpu-{batch}-{placement}")
                    finally:
                        os.environ.pop(BATCH_PLACEMENT_ENV, None)
                    outcome["batch_size"] = batch
                    outcome["placement_asked"] = placement
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
