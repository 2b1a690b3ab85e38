"""The server's event loop and HTTP parser (`serve --loop/--http`): it starts and answers on each pair that is
installed, says which pair it runs, logs every prediction on each, and falls back to h11 where httptools is
missing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tiny_package import EXAMPLE, free_port, server_command, server_process, trained_package

from rscale.serving.server import event_loop, http_parser

PAIRS = [
    ("asyncio", "h11", "asyncio + h11"),
    ("asyncio", "auto", "asyncio + httptools" if importlib.util.find_spec("httptools") else "asyncio + h11"),
    pytest.param("uvloop", "httptools", "uvloop + httptools", marks=pytest.mark.skipif(
        not (importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools")),
        reason="uvloop or httptools not installed")),
]


@pytest.mark.parametrize(("loop", "http", "named"), PAIRS)
def test_the_server_answers_and_logs_on_each_loop_and_parser(tmp_path: Path, loop: str, http: str, named: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = tmp_path / "predictions"
    command = server_command(trained_package(), port, "--loop", loop, "--http", http, "--log-dir", str(logs))
    with server_process(command, url, log=tmp_path / "server.log"):
        with httpx.Client() as client:  # one kept-alive connection: the parser reads requests back to back
            answers = [client.post(f"{url}/invocations", json=EXAMPLE) for _ in range(5)]
            batch = client.post(f"{url}/invocations", json={"instances": [EXAMPLE] * 3})
    assert [a.status_code for a in answers] == [200] * 5 and batch.status_code == 200
    assert len(batch.json()["predictions"]) == 3
    assert f"{named})" in (tmp_path / "server.log").read_text()
    lines = [json.loads(line) for path in logs.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert sorted({line["request_id"] for line in lines}) == sorted(a.headers["x-request-id"] for a in [*answers, batch])
    # five one-record requests and a batch of three, a line each, all written by the time it stopped
    assert sorted(line["records"] for line in lines) == [1, 1, 1, 1, 1, 3]


def test_auto_falls_back_to_h11_without_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httptools", None)  # what `import httptools` sees where it is not installed
    assert http_parser("auto") == "h11"
    with pytest.raises(ImportError, match="pip install httptools"):
        http_parser("httptools")
    assert event_loop("asyncio") == (None, "asyncio")


def test_an_unknown_loop_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rscale.serving.server", "--model-dir", str(tmp_path)],
                          env={**os.environ, "RS_SERVING_LOOP": "trio"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "loop 'trio' is not one of asyncio, uvloop" in done.stderr
    assert "(from RS_SERVING_LOOP=trio); fix: pass --loop or set RS_SERVING_LOOP" in done.stderr
