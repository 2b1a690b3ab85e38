"""Soak: the local endpoint under 64 connections for 60 s on loopback; zero errors and a flat memory line.

    python -m bench.soak [--seconds 60] [--connections 64] [--workers 1] [--out bench/results/soak.json]

Starts the model server the way `rs serve` does (`python -m rscale.serving.server`, prediction log on) with a
small conversion package trained here, drives it closed-loop with wrk (or bench/load_client.py when wrk is
missing) in its own process, and samples the server's resident memory (VmRSS of every server process) once a
second. It stops by itself: the load has a fixed duration, and every wait has a timeout.

Pass/fail (exit code 1 on fail): no transport errors and no non-2xx answers, and memory after the first
tenth of the run (warm-up: first requests, lazy imports) grows by less than MAX_GROWTH to the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = {"n_views": 3, "n_carts": 1, "n_categories": 2, "duration_s": 120, "avg_price": 19.5, "device": "mobile"}
MAX_GROWTH = 0.10  # RSS growth allowed from the end of warm-up to the end of the run


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _server_pids(parent: int) -> list[int]:
    """The server and its workers (children started with --workers)."""
    pids = [parent]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(proc.name))
    return pids


def soak(seconds: int, connections: int, workers: int, work: Path) -> dict[str, Any]:
    import httpx

    from bench.serving import free_port, load, train_package

    package = train_package(work, 2_000)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    log = (work / "server.log").open("w")
    command = [sys.executable, "-m", "rscale.serving.server", "--model-dir", str(package), "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--log-dir", str(work / "predictions")]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    samples: list[tuple[float, float]] = []
    try:
        deadline = time.monotonic() + 180
        ready = "workers" if workers > 1 else "serving"
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"server exited: {(work / 'server.log').read_text()[-2000:]}")
            try:
                up = httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
            except httpx.HTTPError:
                up = False
            if up and ready in (work / "server.log").read_text():
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not come up within 180 s")
        pids = _server_pids(server.pid)
        stop = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            while not stop.wait(1.0):
                samples.append((time.monotonic() - started, _rss_mb(pids)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        figures = load(f"http://127.0.0.1:{port}/invocations", json.dumps(EXAMPLE), connections, seconds, work)
        stop.set()
        sampler.join(timeout=5)
        alive = server.poll() is None
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
    warm = [rss for t, rss in samples if t >= seconds / 10] or [rss for _, rss in samples]
    start_rss, end_rss = warm[0], warm[-1]
    logged = sum(len(path.read_text().splitlines()) for path in (work / "predictions").glob("*.jsonl"))
    errors = figures["errors"] + figures["non2xx"]
    growth = (end_rss - start_rss) / start_rss if start_rss else 0.0
    return {
        "seconds": seconds, "connections": connections, "workers": workers,
        "load_generator": "wrk" if shutil.which("wrk") else "bench.load_client (httpx)",
        "requests": figures["requests"], "req_s": figures["req_s"], "errors": errors,
        "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
        "rss_mb_after_warmup": start_rss, "rss_mb_end": end_rss, "rss_mb_max": max(warm),
        "rss_growth": growth, "server_alive_at_end": alive, "predictions_logged": logged,
        "rss_samples": samples,
        "passed": errors == 0 and alive and growth < MAX_GROWTH and logged >= figures["requests"] - figures["non2xx"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rs-soak-"))
    os.environ.setdefault("RS_PROJECT_DIR", str(work))
    try:
        result = soak(args.seconds, args.connections, args.workers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {k: v for k, v in result.items() if k != "rss_samples"}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
