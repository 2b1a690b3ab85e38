"""`--workers N` (spec: `serving.workers`): N server processes share one port through SO_REUSEPORT, each
logging predictions to its own file; the first stops the others when it stops (SIGTERM), and they stop by
themselves if it is killed, which is the case tested here."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from tiny_package import EXAMPLE, free_port, server_command, server_process, trained_package


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and b"rscale.serving.server" in Path(f"/proc/{pid}/cmdline").read_bytes()


def _all_serving(log: Path) -> None:
    """The first process says it serves only once every worker listens."""
    deadline = time.monotonic() + 180
    while "2 workers" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "2 workers" in log.read_text(), log.read_text()


def _log_pids(log_dir: Path) -> set[int]:
    return {int(path.stem.rsplit("-", 1)[1]) for path in log_dir.glob("*.jsonl")}


def test_two_workers_share_the_port_and_a_worker_stops_when_the_first_is_killed(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = tmp_path / "predictions"
    command = server_command(trained_package(), port, "--workers", "2", "--log-dir", str(logs))
    with server_process(command, url, log=tmp_path / "server.log") as first:
        _all_serving(tmp_path / "server.log")
        for _ in range(120):  # a new connection each: the kernel spreads them over both sockets
            assert httpx.post(f"{url}/invocations", json=EXAMPLE, headers={"connection": "close"}).status_code == 200
        deadline = time.monotonic() + 30  # each process flushes its own log file twice a second
        while len(_log_pids(logs)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = _log_pids(logs)
        assert first.pid in pids and len(pids) == 2, pids  # both served, each into a log file of its own
        workers = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _child_of(int(p.name), first.pid)}
        assert workers == pids - {first.pid}
        first.send_signal(signal.SIGKILL)  # no chance to stop its workers: they must notice by themselves
        first.wait(timeout=30)
    (worker,) = workers
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)


def _child_of(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == parent and _alive(pid)
