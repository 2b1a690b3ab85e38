"""Serving: req/s and p50/p99 latency of the local endpoint against a hand-written Starlette handler.

Each server runs the same small tabular model package (specs/conversion.yaml's MLP, trained here with
`rscale.models.training.train`) in its own process, one uvicorn worker, one torch thread, on 127.0.0.1:
- rscale: `python -m rscale.serving.server --model-dir ... --log-dir ...` (what `rs serve` starts: request
  checks, request ids and the prediction log included),
- hand-written: bench/starlette_baseline.py,
- MLflow: `mlflow models serve --env-manager local -w 1` on the same package as a pyfunc model (full runs only),
- rscale with `--workers 2` (serving.workers), with `--http h11` (the pure-Python parser, the fallback where
  httptools is missing) and with `--loop uvloop` (when uvloop imports), each compared with the one-worker
  rscale server of the same run.
rscale and the hand-written app always run the same event loop and HTTP parser: rscale's defaults, asyncio
and httptools (h11 where httptools does not import); the report's settings say which.
The load generator is wrk in another process (or bench/load_client.py when wrk is missing), closed loop, at
1, 8 and 64 connections with one record per request, and at 8 connections with 64 records per request.
Beside the HTTP runs, both apps are called in this process through ASGI, no HTTP and no load generator
(`asgi_cpu`): CPU microseconds per request, the part of the comparison that load on a shared machine does
not compress toward 1 the way it does loaded wrk ratios.
Goals (DESIGN.md, issue #18): >= 0.9 of raw Starlette's req/s at 1, 8 and 64 connections and of its rows/s at
64 records per request, all in one run; p99 < 25 ms at 64 connections; p50 < 0.5 ms for one client.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import Report

GOAL_THROUGHPUT = 0.9
GOAL_P99_MS = 25.0
GOAL_P50_MS = 0.5
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = {"n_views": 3, "n_carts": 1, "n_categories": 2, "duration_s": 120, "avg_price": 19.5, "device": "mobile"}
BATCH = 64
CONCURRENCY = (1, 8, 64)
LUA = """wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%%d,"duration_us":%%d,"errors":%%d,"non2xx":%%d,' ..
    '"p50_us":%%.1f,"p90_us":%%.1f,"p99_us":%%.1f,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def train_package(work: Path, rows: int) -> Path:
    """A small tabular package (conversion MLP [32, 16]) trained with rscale's own training."""
    import torch

    from bench.training import conversion_rows, plan_for
    from rscale.models.training import train

    torch.set_num_threads(1)
    plan = plan_for("conversion", ["train.max_epochs=1", "train.early_stopping=null"])
    result = train(plan, conversion_rows(rows, 1), conversion_rows(max(500, rows // 5), 2), work / "train",
                   progress=False)
    return Path(result.package_dir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server process in its own process group (MLflow's spawns uvicorn children); stopped by group id."""

    def __init__(self, name: str, command: list[str], port: int, invocations: str, env: dict[str, str], log: Path,
                 ready_text: str | None = None):
        self.name, self.command, self.port, self.ready_text = name, command, port, ready_text
        self.url = f"http://127.0.0.1:{port}{invocations}"
        self.env, self.log_path = env, log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        import httpx

        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited ({self.process.returncode}): "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ping", timeout=1).status_code == 200 and (
                    self.ready_text is None or self.ready_text in self.log_path.read_text()
                ):  # with workers: only once every worker listens
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"{self.name} server did not answer /ping within 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def asgi_cpu(package: Path, work: Path, chunks: int) -> dict[str, dict[str, float]]:
    """CPU microseconds per request of rscale's app (prediction log on) and the hand-written one, called in
    this process through ASGI with a prepared scope, receive and send: {app: {"1 record": us, "64 records": us}}.

    The apps alternate chunk by chunk (20 one-record or 3 64-record requests); each figure is the app's
    20th-percentile chunk in this thread's CPU time, so a chunk another process disturbed (cache, preemption)
    drops out. rscale's log lines (one a request) are written by a writer thread in the server; here the same
    flush runs in this thread every 10 rounds and its CPU per character, times the length of a request's
    line, is added to each request, so the log's whole cost counts.
    """
    import asyncio

    from bench.starlette_baseline import create_app as hand_app
    from rscale.serving.server import create_app

    ours = create_app(package, work / "asgi-predictions")
    log = ours.state.prediction_log
    log.max_pending = 1 << 30  # flushed below, timed
    apps = {"rscale": ours, "hand-written Starlette": hand_app(package)}
    bodies_ = {"1 record": (json.dumps(EXAMPLE).encode(), 20),
               f"{BATCH} records": (json.dumps({"instances": [EXAMPLE] * BATCH}).encode(), 3)}

    async def chunk(app: Any, body: bytes, n: int) -> float:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/invocations", "raw_path": b"/invocations", "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
                 "headers": [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        message = {"type": "http.request", "body": body, "more_body": False}
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return message

        async def send(sent: dict[str, Any]) -> None:
            if sent["type"] == "http.response.start":
                statuses.append(sent["status"])

        started = time.thread_time()
        for _ in range(n):
            await app(dict(scope), receive, send)
        spent = time.thread_time() - started
        if set(statuses) != {200}:
            raise RuntimeError(f"in-process request answered {sorted(set(statuses))}")
        return spent / n * 1e6

    async def measure() -> dict[str, dict[str, float]]:
        samples: dict[tuple[str, str], list[float]] = {(a, b): [] for a in apps for b in bodies_}
        per_char: list[float] = []
        line_chars: dict[str, int] = {}  # a request's log line, by payload
        for round_ in range(chunks):
            for name, app in apps.items():
                for payload, (body, n) in bodies_.items():
                    samples[(name, payload)].append(await chunk(app, body, n))
                    if name == "rscale" and payload not in line_chars and log._pending:
                        line_chars[payload] = len(log._pending[-1])
            if round_ % 10 == 9:
                chars = sum(map(len, log._pending))
                started = time.thread_time()
                log.flush()
                per_char.append((time.thread_time() - started) / max(1, chars) * 1e6)
        flush = statistics.median(per_char) if per_char else 0.0
        figures: dict[str, dict[str, float]] = {}
        for (name, payload), values in samples.items():
            added = flush * line_chars.get(payload, 0) if name == "rscale" else 0.0
            figures.setdefault(name, {})[payload] = sorted(values)[len(values) // 5] + added
        return figures

    return asyncio.run(measure())


def load(url: str, body: str, connections: int, seconds: int, work: Path) -> dict[str, Any]:
    """One closed-loop load run; latencies in microseconds."""
    body_file = work / f"body-{abs(hash(body))}.json"
    body_file.write_text(body)
    if shutil.which("wrk"):
        script = work / f"post-{abs(hash(body))}.lua"
        script.write_text(LUA % body)
        command = ["wrk", f"-t{1 if connections < 16 else 2}", f"-c{connections}", f"-d{seconds}s",
                   "--timeout", "5s", "-s", str(script), url]
    else:
        command = [sys.executable, "-m", "bench.load_client", url, str(body_file),
                   "--connections", str(connections), "--seconds", str(seconds)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["req_s"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


def servers(package: Path, work: Path, with_mlflow: bool) -> list[Server]:
    # MLflow's CLI starts `uvicorn` by name: the interpreter's bin folder must be on PATH
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": path,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    port = free_port()
    same = ["--loop", "asyncio", "--http", "auto"]  # both sides: rscale's defaults
    found = [
        Server("rscale", [sys.executable, "-m", "rscale.serving.server", "--model-dir", str(package),
                          "--host", "127.0.0.1", "--port", str(port), "--log-dir", str(work / "predictions"), *same],
               port, "/invocations", env, work / "rscale.log"),
    ]
    port = free_port()
    found.append(Server("rscale, 2 workers", [sys.executable, "-m", "rscale.serving.server", "--model-dir", str(package),
                                              "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
                                              "--log-dir", str(work / "predictions")],
                        port, "/invocations", env, work / "rscale-workers.log", ready_text="2 workers"))
    variants = [("rscale, h11", ["--loop", "asyncio", "--http", "h11"])]
    if importlib.util.find_spec("uvloop"):
        variants.append(("rscale, uvloop", ["--loop", "uvloop", "--http", "auto"]))
    for name, flags in variants:
        port = free_port()
        found.append(Server(name, [sys.executable, "-m", "rscale.serving.server", "--model-dir", str(package),
                                   "--host", "127.0.0.1", "--port", str(port), "--log-dir", str(work / "predictions"),
                                   *flags], port, "/invocations", env, work / f"{name.replace(', ', '-')}.log"))
    port = free_port()
    found.append(Server("hand-written Starlette", [sys.executable, "-m", "bench.starlette_baseline",
                                                   "--model-dir", str(package), "--port", str(port), *same],
                        port, "/invocations", env, work / "starlette.log"))
    if with_mlflow:
        from bench.mlflow_model import save

        model = work / "mlflow-model"
        if not model.exists():  # written once, served on every repeat
            save(package, model)
        port = free_port()
        mlflow = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model), "--env-manager", "local",
                  "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
        found.append(Server("MLflow models serve", mlflow, port, "/invocations", env, work / "mlflow.log"))
    return found


def loop_and_parser() -> str:
    """The event loop and HTTP parser rscale and the hand-written app both run here (rscale's defaults)."""
    from rscale.serving.server import event_loop, http_parser

    return f"{event_loop('asyncio')[1]} + {http_parser('auto')}"


def bodies(server: str) -> dict[str, str]:
    if server == "MLflow models serve":
        return {"1 record": json.dumps({"dataframe_records": [EXAMPLE]}),
                f"{BATCH} records": json.dumps({"dataframe_records": [EXAMPLE] * BATCH})}
    return {"1 record": json.dumps(EXAMPLE), f"{BATCH} records": json.dumps({"instances": [EXAMPLE] * BATCH})}


def run(quick: bool, work: Path) -> Report:
    seconds = 1 if quick else 3
    repeats = 1 if quick else 3
    generator = "wrk" if shutil.which("wrk") else "bench.load_client (httpx)"
    package = train_package(work, 2_000)
    report = Report("serving", "Serving: local endpoint vs hand-written Starlette (and MLflow serve)", quick,
                    settings={"seconds_per_point": seconds, "repeats": repeats, "load_generator": generator,
                              "concurrency": list(CONCURRENCY), "batch_records": BATCH, "uvicorn_workers": 1,
                              "torch_threads": 1, "host": "127.0.0.1", "loop_and_http": loop_and_parser()})
    with_mlflow = not quick
    samples: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    mlflow_error = None
    for repeat in range(repeats):
        for server in servers(package, work, with_mlflow):
            try:
                with server:
                    payloads = bodies(server.name)
                    if not quick:  # warm up: first requests, lazy inits
                        load(server.url, payloads["1 record"], 8, 1, work)
                    points = [("1 record", c) for c in CONCURRENCY] + [(f"{BATCH} records", 8)]
                    for payload, connections in points:
                        figures = load(server.url, payloads[payload], connections, seconds, work)
                        samples.setdefault((server.name, payload, connections), []).append(figures)
            except Exception as exc:  # MLflow's server is optional: say why it is missing, measure the rest
                if server.name != "MLflow models serve":
                    raise
                mlflow_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                with_mlflow = False
        del repeat
    for (name, payload, connections), runs in samples.items():
        case = f"{name}: {payload}, {connections} conn"
        report.row(f"{case}: req/s", "req/s", [r["req_s"] for r in runs],
                   errors=sum(r["errors"] + r["non2xx"] for r in runs))
        report.row(f"{case}: p50", "ms", [r["p50_us"] / 1000 for r in runs])
        report.row(f"{case}: p99", "ms", [r["p99_us"] / 1000 for r in runs])

    def median(name: str, payload: str, connections: int, key: str) -> float:
        return statistics.median(r[key] for r in samples[(name, payload, connections)])

    ours, hand = "rscale", "hand-written Starlette"
    for connections in CONCURRENCY:
        report.compare(f"req/s vs hand-written, {connections} conn", median(ours, "1 record", connections, "req_s")
                       / median(hand, "1 record", connections, "req_s"), GOAL_THROUGHPUT)
    report.compare(f"rows/s vs hand-written, {BATCH} records/request", median(ours, f"{BATCH} records", 8, "req_s")
                   / median(hand, f"{BATCH} records", 8, "req_s"), GOAL_THROUGHPUT)
    report.compare("rscale p99 at 64 conn", median(ours, "1 record", 64, "p99_us") / 1000, GOAL_P99_MS, unit="ms",
                   higher_is_better=False)
    report.compare("rscale p50, one client", median(ours, "1 record", 1, "p50_us") / 1000, GOAL_P50_MS, unit="ms",
                   higher_is_better=False)
    cpu = asgi_cpu(package, work, 30 if quick else 150)
    for payload in ("1 record", f"{BATCH} records"):
        for name in (ours, hand):
            report.row(f"in-process ASGI CPU per request: {name}, {payload}", "us", [cpu[name][payload]])
        report.compare(f"in-process CPU per request vs hand-written, {payload} (lower is cheaper)",
                       cpu[ours][payload] / cpu[hand][payload], None, higher_is_better=False)
    for variant in ("rscale, 2 workers", "rscale, h11", "rscale, uvloop"):
        if (variant, "1 record", 64) in samples:
            for connections in (8, 64):
                report.compare(f"{variant} / one worker: req/s, {connections} conn",
                               median(variant, "1 record", connections, "req_s")
                               / median(ours, "1 record", connections, "req_s"), None)
            report.compare(f"{variant}: p99 at 64 conn", median(variant, "1 record", 64, "p99_us") / 1000,
                           GOAL_P99_MS, unit="ms", higher_is_better=False)
    if ("MLflow models serve", "1 record", 64) in samples:
        report.compare("MLflow req/s / rscale req/s, 64 conn", median("MLflow models serve", "1 record", 64, "req_s")
                       / median(ours, "1 record", 64, "req_s"), None)
    report.extra["points"] = [
        {"server": name, "payload": payload, "connections": connections,
         "req_s": median(name, payload, connections, "req_s"),
         "p50_ms": median(name, payload, connections, "p50_us") / 1000,
         "p99_ms": median(name, payload, connections, "p99_us") / 1000}
        for (name, payload, connections) in samples
    ]
    report.notes.append(f"load generator: {generator}, closed loop, in its own process on the same cores as "
                        f"the servers; rscale and hand-written Starlette both on uvicorn with {loop_and_parser()} "
                        "(the variants say what they change)")
    if quick:
        report.notes.append("quick run: MLflow's server is left out")
    elif mlflow_error:
        report.notes.append(f"MLflow models serve could not be measured: {mlflow_error}")
    return report


def chart(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in report.extra["points"] if p["payload"] == "1 record"]
    names = list(dict.fromkeys(p["server"] for p in points))
    colours = {"rscale": "#1565c0", "hand-written Starlette": "#9e9e9e", "MLflow models serve": "#ef6c00",
               "rscale, 2 workers": "#2e7d32", "rscale, h11": "#6a1b9a", "rscale, uvloop": "#c2185b"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        mine = sorted((p for p in points if p["server"] == name), key=lambda p: p["connections"])
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(mine))]
        left.bar(xs, [p["req_s"] for p in mine], width, label=name, color=colours.get(name))
        right.plot([p["connections"] for p in mine], [p["p99_ms"] for p in mine], "o-", label=f"{name} p99",
                   color=colours.get(name))
        right.plot([p["connections"] for p in mine], [p["p50_ms"] for p in mine], "x--", color=colours.get(name))
    left.set_xticks(range(len(CONCURRENCY)), [f"{c} conn" for c in CONCURRENCY], fontsize=7)
    left.set_ylabel("req/s, 1 record per request", fontsize=8)
    left.legend(fontsize=7)
    right.axhline(GOAL_P99_MS, color="black", linestyle="--", linewidth=1)
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("connections", fontsize=8)
    right.set_ylabel("latency ms (o p99, x p50)", fontsize=8)
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.tick_params(labelsize=7)
    fig.suptitle(report.title + (" (quick)" if report.quick else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
