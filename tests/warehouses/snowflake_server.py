"""A fakesnow server (Snowflake's HTTP API over DuckDB, on 127.0.0.1) for the Snowflake warehouse tests.

In front of fakesnow sits a small gate that does what fakesnow does not: it refuses a wrong password
with Snowflake's own error (390100), and can answer the next logins, or the next query requests, with HTTP 503
to stand in for a flaky network. The real, unpatched connector and Snowpark talk to it over HTTP.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PASSWORD = "s3cret-Pa55word!"


@dataclass
class Gate:
    """ASGI middleware over fakesnow's app: checks the login password and injects 503s on demand."""

    app: Any
    password: str = PASSWORD
    unavailable_logins: int = 0  # answer this many next logins with 503
    unavailable_queries: int = 0  # answer this many next query requests with 503
    logins: int = 0
    seen: list[int] = field(default_factory=list)  # what each login got
    queries_seen: list[int] = field(default_factory=list)  # what each query request got while refused

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path.startswith("/queries/v1/query-request") and self.unavailable_queries > 0:
            await _read_body(receive)
            self.unavailable_queries -= 1
            self.queries_seen.append(503)
            await _respond(send, 503, {"message": "Service Unavailable"})
            return
        if not path.startswith("/session/v1/login-request"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        self.logins += 1
        if self.unavailable_logins > 0:
            self.unavailable_logins -= 1
            self.seen.append(503)
            await _respond(send, 503, {"message": "Service Unavailable"})
            return
        raw = gzip.decompress(body) if dict(scope["headers"]).get(b"content-encoding") == b"gzip" else body
        if json.loads(raw)["data"].get("PASSWORD") != self.password:
            self.seen.append(390100)
            await _respond(
                send,
                200,
                {"data": None, "code": "390100", "message": "Incorrect username or password was specified.", "success": False},
            )
            return
        self.seen.append(200)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def fake_snowflake() -> Iterator[tuple[dict[str, Any], Gate]]:
    """Start the gated fakesnow server on a free port; yield the stack fields that reach it, and the gate."""
    import fakesnow.server
    import uvicorn

    gate = Gate(fakesnow.server.app)
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(gate, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="fake snowflake", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError("the fake Snowflake server did not start")
    fields = {
        "kind": "snowflake",
        "account": "fakesnow",
        "user": "fake",
        "password": PASSWORD,
        "host": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "database": "RS",
        "schema": "MAIN",
    }
    try:
        yield fields, gate
    finally:
        server.should_exit = True
        thread.join()


def create_database(fields: dict[str, Any]) -> None:
    """fakesnow starts empty: make the database and schema the stack names."""
    import snowflake.connector

    connection = snowflake.connector.connect(
        account=fields["account"], user=fields["user"], password=fields["password"], host=fields["host"],
        port=fields["port"], protocol="http", network_timeout=5, login_timeout=5,
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    )
    try:
        connection.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {fields['database']}")
        connection.cursor().execute(f"CREATE SCHEMA IF NOT EXISTS {fields['database']}.{fields['schema']}")
    finally:
        connection.close()
