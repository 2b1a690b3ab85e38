"""A real, tiny model package for the serving tests, trained once per test session, and a server process runner.

Imported by the serving test modules (pytest puts this folder on sys.path); not a test module itself.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SESSION_DIR = Path(os.environ["RS_PROJECT_DIR"])  # set by tests/conftest.py before this is imported


def conversion_plan(*overrides: str) -> Any:
    from rscale.compiler.compilation import compile_spec

    return compile_spec(REPO / "specs" / "conversion.yaml", ["train.max_epochs=1", *overrides], offline=True).plans[0]


def conversion_rows(n: int, seed: int) -> Any:
    """Rows shaped like specs/conversion.yaml's query result."""
    import random

    import pyarrow as pa

    rng = random.Random(seed)
    start = datetime(2026, 1, 1)
    rows = []
    for i in range(n):
        views = rng.randint(1, 20)
        carts = rng.randint(0, 3)
        rows.append({
            "session_id": f"s{seed}-{i}",
            "n_views": views,
            "n_carts": carts,
            "n_categories": rng.randint(1, 5),
            "duration_s": rng.randint(5, 3000),
            "device": rng.choice(["mobile", "desktop", "tablet"]),
            "avg_price": round(rng.uniform(1, 200), 2),
            "purchased": int(carts > 1 or rng.random() < 0.1),
            "session_start": start + timedelta(minutes=i),
        })
    return pa.Table.from_pylist(rows)


@functools.cache
def trained_package() -> Path:
    """Train the conversion model for one epoch on 96 rows; the package directory it wrote."""
    from rscale.models.training import train

    plan = conversion_plan()
    workdir = SESSION_DIR / "serving-tests" / "train"
    result = train(plan, conversion_rows(64, 1), conversion_rows(32, 2), workdir, progress=False)
    return Path(result.package_dir)


def package_copy(source: Path, target: Path, version: str) -> Path:
    """A copy of a package under another version (what a retrained model looks like to serving)."""
    shutil.copytree(source, target, dirs_exist_ok=True)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["version"] = version
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


EXAMPLE = {"n_views": 3, "n_carts": 1, "n_categories": 2, "duration_s": 120, "avg_price": 19.5, "device": "mobile"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server_process(command: list[str], url: str, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server command until its /ping answers (bounded), yield it, then SIGTERM and reap it."""
    import httpx

    out = log.open("wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}: {log.read_text() if log else ''}")
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not answer /ping")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def server_command(package: Path, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rscale.serving.server", "--model-dir", str(package), "--host", "127.0.0.1",
            "--port", str(port), *extra]
