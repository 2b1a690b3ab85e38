"""The `local` serving tier: the model server as a detached process on this machine.

Each endpoint is one `python -m rscale.serving.server` process, recorded in `.rs/serving/<name>.json`
(pid, url, package, version) with its output in `.rs/serving/<name>.log`. A new deployment of the same
name starts beside the old one on the same port (SO_REUSEPORT) and stops the old one only once the new
one answers, so clients see no downtime. The server never opens the DuckDB warehouse (one writer at a
time); it appends predictions to JSON lines under `.rs/predictions/<name>/`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rscale.errors import RscaleError
from rscale.serving.endpoint import Endpoint, read_manifest, read_state, remove_state, write_state

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan
    from rscale.compiler.stack import StackSpec

SERVER_MODULE = "rscale.serving.server"
_children: dict[int, subprocess.Popen[bytes]] = {}  # servers this process started, reaped when they exit


class LocalDeployer:
    """Deploys, checks, queries and stops local model servers."""

    tier = "local"
    start_timeout_s = 180.0  # importing torch and loading a package on a busy laptop can take a while
    stop_timeout_s = 15.0
    request_timeout_s = 30.0

    def __init__(self, stack: StackSpec | None = None) -> None:
        self.stack = stack

    # --- lifecycle ---------------------------------------------------------------------------------
    def deploy(self, plan: Plan, package_dir: Path) -> Endpoint:
        """Serve `package_dir` as endpoint `plan.name` on the tier's host and port (0: keep the running
        endpoint's port, else a free one). Same plan and package already running: nothing to do."""
        tier = plan.serving
        return self.serve(
            plan.name,
            package_dir,
            host=getattr(tier, "host", "127.0.0.1"),
            port=getattr(tier, "port", 0),
            log_predictions=getattr(tier, "log_predictions", True),
            workers=getattr(tier, "workers", 1),
            log_file_max_mb=getattr(tier, "log_file_max_mb", None),
            log_file_max_minutes=getattr(tier, "log_file_max_minutes", None),
            plan_hash=plan.hash,
            stack=plan.stack,
        )

    def serve(
        self,
        name: str,
        package_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_predictions: bool = True,
        workers: int = 1,
        log_file_max_mb: float | None = None,
        log_file_max_minutes: float | None = None,
        plan_hash: str | None = None,
        stack: StackSpec | None = None,
    ) -> Endpoint:
        """Start (or keep, or replace) endpoint `name` serving `package_dir`; `rs serve` calls this without a plan."""
        from rscale.paths import predictions_dir, serving_dir

        package_dir = Path(package_dir).resolve()
        manifest = read_manifest(package_dir)
        version = manifest.get("version")
        plan_hash = plan_hash or manifest.get("plan_hash")
        old = read_state(name)
        if old is not None and old.get("tier") != self.tier:
            raise RscaleError(
                f"endpoint `{name}` is a {old.get('tier')} endpoint, not a local one",
                fix=f"remove it first with `rs undeploy {name}`, or serve under another name",
            )
        old_running = old is not None and old.get("tier") == self.tier and _is_server(int(old.get("pid", 0)))
        if (
            old is not None
            and old_running
            and old.get("plan_hash") == plan_hash
            and old.get("model_version") == version
            and old.get("package_dir") == str(package_dir)
            and (not port or old.get("port") == port)
            and int(old.get("workers") or 1) == workers
            and _ping(str(old["url"]))
        ):
            return self._endpoint(old, healthy=True)

        if not port and old is not None and old_running:
            port = int(old["port"])  # keep the URL clients already use
        log_path = serving_dir() / f"{name}.log"
        ready_file = serving_dir() / f".{name}.{uuid.uuid4().hex[:8]}.ready"
        command = [
            sys.executable, "-m", SERVER_MODULE,
            "--model-dir", str(package_dir),
            "--host", host,
            "--port", str(port),
            "--ready-file", str(ready_file),
            "--workers", str(workers),
        ]  # fmt: skip
        if log_predictions:
            command += ["--log-dir", str(predictions_dir(name))]
            if log_file_max_mb:
                command += ["--log-max-file-mb", str(log_file_max_mb)]
            if log_file_max_minutes:
                command += ["--log-max-file-minutes", str(log_file_max_minutes)]
        with log_path.open("ab") as log:
            log.write(f"--- {_now()} starting {name}: {package_dir} (version {version})\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `rs`, and a Ctrl-C in the terminal does not reach it
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        _children[process.pid] = process
        try:
            bound_port = self._wait_until_ready(name, host, process, ready_file, log_path)
        finally:
            ready_file.unlink(missing_ok=True)
        url = f"http://{_url_host(host)}:{bound_port}"
        state = {
            "name": name,
            "tier": self.tier,
            "stack": _stack_record(stack or self.stack),
            "pid": process.pid,
            "url": url,
            "host": host,
            "port": bound_port,
            "workers": workers,
            "package_dir": str(package_dir),
            "model_version": version,
            "plan_hash": plan_hash,
            "log": str(log_path),
            "predictions_dir": str(predictions_dir(name)) if log_predictions else None,
            "started": _now(),
        }
        write_state(name, state)
        if old is not None and old_running and int(old["pid"]) != process.pid:
            _stop(int(old["pid"]), self.stop_timeout_s)
        return self._endpoint(state, healthy=True)

    def status(self, name: str) -> Endpoint | None:
        state = read_state(name)
        if state is None or state.get("tier") != self.tier:
            return None
        running = _is_server(int(state.get("pid", 0)))
        return self._endpoint(state, healthy=running and _ping(str(state["url"])), running=running)

    def predict(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        state = read_state(name)
        if state is None or state.get("tier") != self.tier:
            raise RscaleError(f"no local endpoint named `{name}`", fix=f"start it with `rs serve {name}`")
        url = f"{state['url']}/invocations"
        try:
            response = httpx.post(url, json=payload, timeout=self.request_timeout_s)
        except httpx.HTTPError as exc:
            raise RscaleError(
                f"endpoint `{name}` at {state['url']} did not answer: {exc}",
                fix=f"check `rs status {name}` and its log {state.get('log')}; restart with `rs serve {name}`",
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:500]}
        if response.status_code >= 400:
            reason = body.get("error", body) if isinstance(body, dict) else body
            raise RscaleError(
                f"endpoint `{name}` rejected the request ({response.status_code}): {reason}",
                fix="send the fields of the package's request schema (see its manifest.json `request_schema`)"
                if response.status_code < 500
                else f"see the endpoint's log {state.get('log')}",
            )
        return body  # type: ignore[no-any-return]

    def undeploy(self, name: str) -> bool:
        state = read_state(name)
        if state is None or state.get("tier") != self.tier:
            return False
        pid = int(state.get("pid", 0))
        if _is_server(pid):
            _stop(pid, self.stop_timeout_s)
        remove_state(name)
        return True

    # --- internals ---------------------------------------------------------------------------------
    def _wait_until_ready(self, name: str, host: str, process: subprocess.Popen[bytes], ready_file: Path, log_path: Path) -> int:
        """The port the new server listens on, once it serves; a clear error with the log's tail otherwise."""
        import json

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise RscaleError(
                    f"the server for `{name}` exited with code {code} while starting. Last lines of {log_path}:\n"
                    + _tail(log_path),
                    fix="fix the cause above (a broken package, a port in use), then deploy again",
                )
            if ready_file.exists():
                try:
                    port = int(json.loads(ready_file.read_text())["port"])
                except (OSError, ValueError, KeyError):
                    port = 0
                if port and _ping(f"http://{_url_host(host)}:{port}", timeout=2.0):
                    return port
            time.sleep(0.05)
        _stop(process.pid, self.stop_timeout_s)
        raise RscaleError(
            f"the server for `{name}` did not answer /ping within {self.start_timeout_s:.0f} s. "
            f"Last lines of {log_path}:\n" + _tail(log_path),
            fix="see the log above; a slow machine may need LocalDeployer.start_timeout_s raised",
        )

    def _endpoint(self, state: dict[str, Any], healthy: bool | None, running: bool = True) -> Endpoint:
        return Endpoint(
            name=str(state["name"]),
            tier=self.tier,
            url=str(state["url"]),
            model_version=state.get("model_version"),
            plan_hash=state.get("plan_hash"),
            healthy=healthy,
            details={
                "pid": state.get("pid"),
                "workers": state.get("workers"),
                "running": running,
                "package_dir": state.get("package_dir"),
                "log": state.get("log"),
                "predictions_dir": state.get("predictions_dir"),
                "started": state.get("started"),
            },
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _stack_record(stack: StackSpec | None) -> dict[str, Any]:
    """The stack an endpoint was deployed with, as its record keeps it (the embedded default without one)."""
    from rscale.compiler.stack import StackSpec

    stack = stack or StackSpec(name="local", description="embedded default")
    return stack.model_dump(mode="json", by_alias=True)


def _ping(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/ping", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _is_server(pid: int) -> bool:
    """Whether `pid` is a live model server (not a process that reused the pid of a dead one)."""
    if pid <= 0:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process now holds this pid
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.exists():
        try:
            return SERVER_MODULE.encode() in cmdline.read_bytes()
        except OSError:
            return False
    return True


def _stop(pid: int, timeout_s: float) -> None:
    """SIGTERM (uvicorn finishes in-flight requests and flushes the prediction log), SIGKILL after `timeout_s`."""
    child = _children.pop(pid, None)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                return
        elif not process_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if child is not None:
        child.wait(timeout=5)


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (a local endpoint's server, say); one owned by another user counts."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])
