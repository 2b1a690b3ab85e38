"""The model server: one model package behind the SageMaker inference-container contract.

`GET /ping` answers 200 once the package is loaded; `POST /invocations` (and boto3's
`/endpoints/<name>/invocations`) takes one JSON record or `{"instances": [...]}` and returns
`{"predictions": [...], "model_version": ..., "request_id": ...}`. The same server runs locally
(`rs serve`), in a custom container and on SageMaker, which starts containers with `serve`.
Every logged request is appended as one JSON line under `log_dir` for the feedback loop (PredictionLog).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's own limit for a real-time invocation payload
THREADPOOL_RECORDS = 64  # bigger batches predict off the event loop, so /ping and small requests keep flowing
FLUSH_EVERY_S = 0.5
_JSON = "application/json"
NO_LOG_HEADER = "x-rscale-no-log"  # `X-Rscale-No-Log: 1` keeps a request out of the prediction log
_TRUE = ("1", "true", "yes")
_NO_LOG = NO_LOG_HEADER.encode()
_READ_HEADERS = frozenset({b"x-request-id", b"content-type", b"content-length", _NO_LOG})


class PredictionLog:
    """Every logged request as one JSON line, in append-only files `<UTC start>-<pid>.jsonl` under `directory`.

    A line (format 2, since 2026-12-02) holds the whole request:
    `{"request_id", "ts", "latency_ms", "model_version", "plan_hash", "records": N, "inputs": [N records],
    "outputs": [N outputs]}`; the `records` key marks the format. Earlier versions wrote one line per record,
    `{..., "index": i, "inputs": {record}, "outputs": output}`, repeating the request's fields on each; every
    reader (feedback ingestion, `rs monitor`) reads both, and turns a line of N records into N predictions
    with record_index 0..N-1. One line per request costs a constant per request: the server passes the
    records array as the body holds it and the predictions as the response holds them, so nothing is
    encoded again and nothing is done per record (at 64 records a request, per-record lines cost ~3.5 us a
    record). Headers are never logged (only the request id), so no credential sent with a request is.

    A request serializes its own line (a few microseconds, spread evenly over requests, so no request
    waits behind a big batch of serialization); `flush` writes the queued lines in one append. While the server runs,
    a writer thread (`start`) flushes every FLUSH_EVERY_S, or sooner once `max_pending` lines wait, so the
    join and the write never run on the event loop (the write releases the GIL); `close` stops it and
    writes what is left, so nothing queued is lost at shutdown. A file that has reached `max_file_bytes`, or whose first line is older than
    `max_file_age_s`, is closed and the next flush starts a new one; names start with the file's UTC start
    time, so sorting names sorts files by time. A failing disk never fails a request: lines that cannot be
    serialized or written are counted in `failures` (one a request) and dropped, and `last_error` says why.
    """

    def __init__(
        self,
        directory: Path,
        model_version: str | None,
        plan_hash: str | None,
        max_pending: int = 10_000,
        *,
        max_file_bytes: int | None = None,
        max_file_age_s: float | None = None,
    ):
        self.directory = Path(directory)
        self.max_file_bytes = max_file_bytes
        self.max_file_age_s = max_file_age_s
        self.path = self._new_path()
        self._size = 0
        self._opened = time.monotonic()
        self.files = 0  # files closed by rotation
        self.last_error: str | None = None
        self.model_version = model_version
        self.plan_hash = plan_hash
        self.max_pending = max_pending
        self.failures = 0
        self.written = 0
        self._fixed = f'"model_version":{json.dumps(model_version)},"plan_hash":{json.dumps(plan_hash)}'
        self._pending: list[str] = []
        self._lock = threading.Lock()  # record() on the event loop, flush() on the writer thread
        self._write_lock = threading.Lock()  # one flush at a time: lines stay in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._warned = False
        self._second = -1
        self._second_text = ""

    def _iso(self, ts: float) -> str:
        """ISO 8601 UTC with microseconds; the date-time part is formatted once per second."""
        second = int(ts)
        if second != self._second:
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((ts - second) * 1e6):06d}+00:00"

    def record(
        self,
        request_id: str,
        ts: float,
        inputs: list[dict[str, Any]],
        outputs: list[Any],
        *,
        inputs_text: str | None = None,
        outputs_text: str | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Queue the request's one line; never raises. `inputs_text` / `outputs_text`: the JSON text of the
        whole records array / outputs array where the caller already has it (a slice of the request body, the
        response's predictions), which saves encoding twice; it must be one line. The cost is a constant per
        request whatever its number of records: no Python loop over them.
        `latency_ms`: the request's time from its first byte read to its answer encoded (`rs monitor` reads it)."""
        try:
            latency = f'"latency_ms":{latency_ms:.3f},' if latency_ms is not None else ""
            ins = inputs_text if inputs_text is not None else _dumps(inputs)
            outs = outputs_text if outputs_text is not None else _dumps(outputs)
            line = (
                f'{{"request_id":{_dumps(request_id)},"ts":"{self._iso(ts)}",{latency}{self._fixed},'
                f'"records":{len(inputs)},"inputs":{ins},"outputs":{outs}}}'
            )
        except Exception as exc:  # noqa: BLE001 - logging must never take the endpoint down
            self._failed(1, exc)
            return
        with self._lock:
            self._pending.append(line)
            waiting = len(self._pending)
        if waiting >= self.max_pending:
            if self._writer is not None:
                self._wake.set()  # the writer thread flushes now
            else:
                self.flush()

    def start(self) -> None:
        """Flush on a writer thread every FLUSH_EVERY_S (and whenever max_pending lines wait) until `close`."""
        if self._writer is None:
            self._stop.clear()
            self._writer = threading.Thread(target=self._write_forever, name="rscale-prediction-log", daemon=True)
            self._writer.start()

    def close(self) -> None:
        """Stop the writer thread and write every line still queued."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._stop.set()
            self._wake.set()
            writer.join()
        self.flush()

    def _write_forever(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write every queued line now, in one append (from any thread)."""
        with self._write_lock:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        if self._size and self._due():
            self.path, self._size, self._opened = self._new_path(), 0, time.monotonic()
            self.files += 1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = "\n".join(pending) + "\n"
            # One write of whole lines: a reader never sees a line from two flushes interleaved.
            with self.path.open("a", encoding="utf-8") as file:
                file.write(text)
            if not self._size:
                self._opened = time.monotonic()  # a file's age counts from its first line
            self._size += len(text)
            self.written += len(pending)
            if self._warned and self.last_error is not None:
                self.last_error = None  # the disk came back; a new failure is reported again
                self._warned = False
        except Exception as exc:  # noqa: BLE001 - logging must never take the endpoint down
            self._failed(len(pending), exc)

    def _due(self) -> bool:
        """Whether the current file is full or old enough to be closed."""
        if self.max_file_bytes is not None and self._size >= self.max_file_bytes:
            return True
        return self.max_file_age_s is not None and time.monotonic() - self._opened >= self.max_file_age_s

    def _new_path(self) -> Path:
        """A file named by the UTC time it starts, so name order is time order, and never the current one."""
        while True:
            started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = self.directory / f"{started}-{os.getpid()}.jsonl"
            if path != getattr(self, "path", None):
                return path

    def _failed(self, lines: int, exc: Exception) -> None:
        self.failures += lines
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self._warned:  # once per outage: a full disk would otherwise flood the server log
            self._warned = True
            print(f"rscale: prediction log {self.path} not written: {exc!r}", file=sys.stderr, flush=True)


def _builtin(value: Any) -> Any:
    """json fallback for numpy/torch scalars and arrays a model may return."""
    for attr in ("tolist", "item", "isoformat"):
        if hasattr(value, attr):
            return getattr(value, attr)()
    return str(value)


def _make_dumps() -> Callable[[Any], str]:
    """Compact JSON text of a value, from an encoder built once; NaN and infinities raise ValueError (they
    are not JSON, and a client's parser would reject the whole answer).

    json.dumps builds a new encoder on every call, which costs more than encoding a small record; the log
    encodes two objects per prediction. c_make_encoder is the C encoder json.dumps itself uses (absent
    only on builds without the _json accelerator, where JSONEncoder.encode is the fallback).
    """
    from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]

    if c_make_encoder is None:
        return json.JSONEncoder(separators=(",", ":"), default=_builtin, allow_nan=False).encode
    encode = c_make_encoder(None, _builtin, encode_basestring_ascii, None, ":", ",", False, False, False)

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    return dumps


dumps = _make_dumps()
_dumps = dumps


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number; send null for a missing value")


# json.loads with Python's extensions off: NaN and Infinity are not JSON, and would reach the model.
_DECODER = json.JSONDecoder(parse_constant=_not_json)


def _error_body(message: str, request_id: str, problems: list[str] | None = None) -> bytes:
    """A rejection's JSON: the reason, the request id and (for 422) every problem found."""
    answer: dict[str, Any] = {"error": message, "request_id": request_id}
    if problems is not None:
        answer["problems"] = problems
    return json.dumps(answer).encode()


def _error(status: int, message: str, request_id: str, problems: list[str] | None = None) -> Response:
    body = _error_body(message, request_id, problems)
    return Response(body, status_code=status, media_type=_JSON, headers={"x-request-id": request_id})


# An answer to POST /invocations: status, JSON body, request id.
Answer = tuple[int, bytes, str]
_CONTENT_TYPE = (b"content-type", _JSON.encode())


async def _send_answer(send: Send, answer: Answer) -> None:
    """Send an answer as two ASGI messages with its three headers built here: what Starlette's Response
    does, without its per-request header object."""
    status, content, request_id = answer
    headers = [_CONTENT_TYPE, (b"content-length", b"%d" % len(content)), (b"x-request-id", request_id.encode("latin-1"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


class ServingApp(Starlette):
    """Starlette, with `POST /invocations` (every prediction request SageMaker sends) answered straight from
    the ASGI scope: routing, the exception middlewares and the Request/Response objects cost about 15 us a
    request, some 7% of a one-record request's CPU here. Every other path and method (/ping, boto3's
    /endpoints/<name>/invocations, 404s and 405s, the lifespan) goes through Starlette as before, and the
    Starlette route for /invocations stays, for a mounted app or a root path."""

    invoke: Callable[[Scope, Receive], Awaitable[Answer]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.invoke is not None and scope["type"] == "http" and scope["path"] == "/invocations" and (
            scope["method"] == "POST"
        ):
            try:
                answer = await self.invoke(scope, receive)
            except ClientDisconnect:
                return  # the client left mid-body: nobody to answer
            except Exception as exc:  # noqa: BLE001 - the client gets a reason, the server log the traceback
                traceback.print_exc(file=sys.stderr)
                request_id = os.urandom(16).hex()
                answer = (500, _error_body(f"internal error: {type(exc).__name__}", request_id), request_id)
            await _send_answer(send, answer)
            return
        await super().__call__(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, as JSON with a reason like every other rejection."""
    from starlette.exceptions import HTTPException

    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    request_id = os.urandom(16).hex()
    reasons = {404: f"no such path {request.url.path!r}; POST /invocations or GET /ping", 405: f"{request.method} is not allowed here"}
    response = _error(status, reasons.get(status, str(getattr(exc, "detail", ""))), request_id)
    response.headers.update(headers)
    return response


class _TooLarge(Exception):
    def __init__(self, size: int, complete: bool = False) -> None:
        super().__init__(size)
        self.size = size
        self.complete = complete  # the whole body was read: nothing left to drain


async def _read_body(receive: Receive, limit: int, length: str | None) -> bytes:
    """The request body, or _TooLarge without buffering more than `limit` bytes (chunked bodies too).
    Reads ASGI messages directly: Starlette's stream() adds an async generator per request. `length`: the
    Content-Length header, if sent."""
    if length is not None and length.isdigit() and int(length) > limit:
        raise _TooLarge(int(length))
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False) and message["type"] == "http.request":
        if len(body) > limit:
            raise _TooLarge(len(body), complete=True)
        return body  # the common case: one message
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge(size, complete=not message.get("more_body", False))
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(receive: Receive, cap: int) -> None:
    """Read and drop the rest of a rejected body (up to `cap`), so the client can read our 4xx instead of
    failing on a reset connection."""
    size = 0
    with contextlib.suppress(Exception):
        while size <= cap:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def _records_of(body: Any) -> list[dict[str, Any]]:
    """One record `{...}` or `{"instances": [{...}, ...]}` -> a list of records; ValueError says what is wrong."""
    if type(body) is not dict:
        raise ValueError(f"the body must be a JSON object (one record, or {{\"instances\": [...]}}), got {type(body).__name__}")
    instances = body.get("instances")
    if instances is None:
        return [body]
    if type(instances) is not list or not instances:
        raise ValueError('"instances" must be a non-empty list of records')
    if set(map(type, instances)) != {dict}:  # one C-level pass; the loop below only names the culprit
        for index, record in enumerate(instances):
            if type(record) is not dict:
                raise ValueError(f"instances[{index}] must be a JSON object, got {type(record).__name__}")
    return instances


_INSTANCES = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"instances"[ \t\n\r]*:[ \t\n\r]*\[')
_CLOSE = re.compile(r"[ \t\n\r]*\}[ \t\n\r]*\Z")  # after the instances array: the body's end
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]  # the C scanner json.loads itself runs


def create_app(
    package_dir: str | Path,
    log_dir: Path | None = None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    log_max_file_bytes: int | None = None,
    log_max_file_age_s: float | None = None,
) -> Starlette:
    """Load the model package at `package_dir` and return the ASGI app serving it.

    Predictions are logged under `log_dir` (JSON lines) when given, in files rotated by size and age. The
    package loads here, before the server listens, so `/ping` is 200 from the first request it can answer.
    """
    from rscale.models.package import ModelPackage, RequestError
    from rscale.models.tasks import PredictionNotFinite

    package = ModelPackage.load(Path(package_dir))
    manifest = package.manifest
    version = str(package.version) if package.version is not None else None
    plan_hash = manifest.get("plan_hash")
    log = (
        PredictionLog(
            Path(log_dir), version, plan_hash, max_file_bytes=log_max_file_bytes, max_file_age_s=log_max_file_age_s
        )
        if log_dir is not None
        else None
    )
    # predict_json() validates as it encodes (RequestError names the field), so no separate validate() pass;
    # it answers each prediction as JSON text, which serves both the response and its log line.
    predict: Callable[[list[dict[str, Any]]], list[str]] = package.predict_json
    version_json = json.dumps(version)

    async def ping(request: Request) -> Response:
        if log is not None and log.last_error is not None:
            # Still healthy (it answers), but says that predictions are not being logged, and why.
            report = {"prediction_log": {"path": str(log.path), "failures": log.failures, "last_error": log.last_error}}
            return Response(json.dumps(report).encode(), status_code=200, media_type=_JSON)
        return Response(b"", status_code=200, media_type=_JSON)

    async def invoke(scope: Scope, receive: Receive) -> Answer:
        started = time.perf_counter()
        # the four headers read here, in one pass over the raw list (Starlette's Headers scans it per lookup)
        headers = {name: value for name, value in scope["headers"] if name in _READ_HEADERS}
        request_id = headers[b"x-request-id"].decode("latin-1") if b"x-request-id" in headers else ""
        request_id = request_id or os.urandom(16).hex()
        if len(request_id) > 128:
            request_id = os.urandom(16).hex()
        content_type = headers[b"content-type"].decode("latin-1") if b"content-type" in headers else _JSON
        if content_type != _JSON and content_type.partition(";")[0].strip().lower() != _JSON:
            await _drain(receive, 64 * max_body_bytes)
            return 415, _error_body(f"content type must be {_JSON}, got {content_type!r}", request_id), request_id
        try:
            length = headers.get(b"content-length")
            raw = await _read_body(receive, max_body_bytes, length.decode("latin-1") if length is not None else None)
        except _TooLarge as exc:
            if not exc.complete:
                await _drain(receive, 64 * max_body_bytes)
            return 413, _error_body(f"the body is {exc.size} bytes or more; the limit is {max_body_bytes}", request_id), request_id
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return 400, _error_body(f"the body is not UTF-8 text (JSON must be UTF-8): {exc.reason} at byte {exc.start}", request_id), request_id
        logged = log is not None and headers.get(_NO_LOG, b"0").decode("latin-1").strip().lower() not in _TRUE
        # A logged `{"instances": [...]}` body is decoded from its array, with the same C scanner the full
        # decode runs (so at the same cost): the array's text as sent then becomes the log line's inputs.
        records: list[dict[str, Any]] | None = None
        inputs_text: str | None = None
        opened = _INSTANCES.match(text) if logged else None
        if opened is not None:
            at = opened.end() - 1
            try:
                instances, end = _SCAN(text, at)
            except (StopIteration, ValueError, RecursionError):  # not JSON, NaN, too deep: the full decode says
                instances, end = None, at
            if (type(instances) is list and instances and _CLOSE.match(text, end) is not None
                    and set(map(type, instances)) == {dict}):  # fmt: skip
                records, inputs_text = instances, text[at:end]
        if records is None:
            try:
                body = _DECODER.decode(text)
            except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers over Python's digit limit
                return 400, _error_body(f"the body is not valid JSON: {exc}", request_id), request_id
            except RecursionError:
                return 400, _error_body("the body is not a request: JSON nested too deeply", request_id), request_id
            try:
                records = _records_of(body)
            except ValueError as exc:
                return 400, _error_body(str(exc), request_id), request_id
            if logged and len(records) == 1 and records[0] is body and text[:1] == "{":
                inputs_text = "[" + text + "]"  # one record: logged as received (valid UTF-8 JSON)
        ts = time.time()
        try:
            if len(records) > THREADPOOL_RECORDS:
                output_texts = await run_in_threadpool(predict, records)
            else:
                output_texts = predict(records)
        except RequestError as exc:
            return 422, _error_body(str(exc), request_id, exc.problems), request_id
        except PredictionNotFinite:  # NaN or infinity: inputs far outside what the model was trained on
            problem = "the prediction is not a finite number: the inputs are outside the range the model can score"
            return 422, _error_body(problem, request_id, [problem]), request_id
        except Exception as exc:  # noqa: BLE001 - the client gets a reason, the log gets the traceback
            traceback.print_exc(file=sys.stderr)
            return 500, _error_body(f"prediction failed: {type(exc).__name__}", request_id), request_id
        predictions = "[" + ",".join(output_texts) + "]"
        if logged and log is not None:
            latency_ms = (time.perf_counter() - started) * 1000
            if inputs_text is not None and ("\n" in inputs_text or "\r" in inputs_text):
                # newlines between tokens (none can be inside a JSON string) folded: a log line stays one line
                inputs_text = inputs_text.replace("\r", " ").replace("\n", " ")
            try:
                log.record(request_id, ts, records, [], inputs_text=inputs_text, outputs_text=predictions,
                           latency_ms=latency_ms)  # fmt: skip
            except Exception:  # noqa: BLE001, S110 - logging never fails a request
                pass
        content = (
            '{"predictions":'
            + predictions
            + ',"model_version":'
            + version_json
            + ',"request_id":'
            + _dumps(request_id)
            + "}"
        ).encode()
        return 200, content, request_id

    async def invocations(request: Request) -> Response:
        status, content, request_id = await invoke(request.scope, request.receive)
        return Response(content, status_code=status, media_type=_JSON, headers={"x-request-id": request_id})

    async def sagemaker_runtime_invocations(request: Request) -> Response:
        # boto3's sagemaker-runtime invoke_endpoint POSTs here when endpoint_url points at this server.
        return await invocations(request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if log is not None:
            log.start()
        try:
            yield
        finally:
            if log is not None:
                log.close()

    app = ServingApp(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/endpoints/{endpoint_name}/invocations", sagemaker_runtime_invocations, methods=["POST"]),
        ],
        lifespan=lifespan,
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.invoke = invoke
    app.state.package = package
    app.state.prediction_log = log
    return app


def _listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening socket. SO_REUSEPORT lets a replacement server share the port with the old one
    until the old one stops, so replacing an endpoint drops no connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the socket says
    # it is TCP. Without it Nagle holds the response body behind the headers until the client's delayed ACK
    # (40 ms a request on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    package_dir: str | Path,
    host: str = "0.0.0.0",
    port: int = 8080,
    log_dir: Path | None = None,
    ready_file: Path | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    log_max_file_bytes: int | None = None,
    log_max_file_age_s: float | None = None,
    workers: int = 1,
    parent_pid: int | None = None,
    loop: str = "asyncio",
    http: str = "auto",
) -> None:
    """Serve a package until SIGTERM/SIGINT. Writes `ready_file` ({"pid", "host", "port"}) once serving, so a
    caller that asked for port 0 learns the port, and knows this very process (not an old one) is up.

    `workers` > 1 starts that many server processes in all on the same port (SO_REUSEPORT: the kernel spreads
    connections over them); this process is the first and stops the others when it stops, and each stops by
    itself if this one dies (`parent_pid`). Each loads the package itself and logs to a file of its own.
    `http` ("auto", "httptools", "h11") picks uvicorn's HTTP parser: "auto" is httptools, which rscale
    installs (about 22% less server CPU per one-record request than h11, 37-39% less at 64 connections), and
    h11 where httptools does not import. `loop` ("asyncio", "uvloop") picks the event loop: asyncio by
    default, because uvloop measured no CPU gain over asyncio with httptools and a p99 at 64 connections
    ten times asyncio's (200-440 ms against 17-20 ms, both apps alike; BENCHMARKS.md, Serving).
    """
    import uvicorn

    app = create_app(
        package_dir,
        log_dir,
        max_body_bytes=max_body_bytes,
        log_max_file_bytes=log_max_file_bytes,
        log_max_file_age_s=log_max_file_age_s,
    )
    sock = _listening_socket(host, port)
    bound_port = sock.getsockname()[1]
    loop_factory, loop_name = event_loop(loop)
    http_name = http_parser(http)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=10,
                            http=http_name)  # fmt: skip
    server = uvicorn.Server(config)
    children: list[subprocess.Popen[bytes]] = []

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            if parent_pid is not None:
                asyncio.create_task(_exit_with_parent(server, parent_pid))
            for _ in range(workers - 1):
                children.append(_start_worker(package_dir, host, bound_port, log_dir, max_body_bytes,
                                              log_max_file_bytes, log_max_file_age_s, loop, http))  # fmt: skip
            await _until_workers_serve(host, bound_port, children)
            extra = f", {workers} workers" if workers > 1 else ""
            print(f"rscale: serving {package_dir} on http://{host}:{bound_port} (pid {os.getpid()}{extra}, "
                  f"{loop_name} + {http_name})", flush=True)  # fmt: skip
            if ready_file is not None:
                tmp = ready_file.with_suffix(".tmp")
                tmp.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": bound_port, "workers": workers,
                                          "loop": loop_name, "http": http_name}))
                tmp.replace(ready_file)
        try:
            await task
        finally:
            _stop_workers(children)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run())


LOOPS = ("asyncio", "uvloop")
HTTP_PARSERS = ("auto", "httptools", "h11")


def event_loop(choice: str) -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """The event loop factory for `choice` (None: asyncio's own) and the loop's name. Asking for uvloop where
    it is missing raises ImportError with the fix."""
    if choice not in LOOPS:
        raise ValueError(f"loop {choice!r} is not one of {', '.join(LOOPS)}")
    if choice == "asyncio":
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        raise ImportError("loop 'uvloop' asked for, but uvloop is not installed: pip install \"rscale[fast]\"") from None
    return uvloop.new_event_loop, "uvloop"


def http_parser(choice: str) -> str:
    """uvicorn's HTTP implementation for `choice`; "auto" is httptools when it imports, else h11."""
    if choice not in HTTP_PARSERS:
        raise ValueError(f"http {choice!r} is not one of {', '.join(HTTP_PARSERS)}")
    if choice == "h11":
        return "h11"
    try:
        import httptools  # noqa: F401
    except ImportError:
        if choice == "httptools":
            raise ImportError("http 'httptools' asked for, but httptools is not installed: pip install httptools") from None
        return "h11"
    return "httptools"


def _start_worker(
    package_dir: str | Path,
    host: str,
    port: int,
    log_dir: Path | None,
    max_body_bytes: int,
    log_max_file_bytes: int | None,
    log_max_file_age_s: float | None,
    loop: str = "asyncio",
    http: str = "auto",
) -> subprocess.Popen[bytes]:
    """One more server process on the same host and port (its own socket, SO_REUSEPORT)."""
    command = [
        sys.executable, "-m", "rscale.serving.server", "--model-dir", str(package_dir), "--host", host,
        "--port", str(port), "--max-body-bytes", str(max_body_bytes), "--parent-pid", str(os.getpid()),
        "--loop", loop, "--http", http,
    ]  # fmt: skip
    if log_dir is not None:
        command += ["--log-dir", str(log_dir)]
    if log_max_file_bytes:
        command += ["--log-max-file-mb", str(log_max_file_bytes / (1024 * 1024))]
    if log_max_file_age_s:
        command += ["--log-max-file-minutes", str(log_max_file_age_s / 60)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


async def _until_workers_serve(host: str, port: int, children: list[subprocess.Popen[bytes]], timeout_s: float = 180) -> None:
    """Wait until every worker listens (each prints nothing until then; its /proc entry shows the socket is
    not enough), so the ready file means the whole pool serves. A worker that exits is reported, not waited for."""
    deadline = time.monotonic() + timeout_s
    pending = [child for child in children]
    while pending and time.monotonic() < deadline:
        pending = [child for child in pending if child.poll() is None and not _listens(child.pid, port)]
        if pending:
            await asyncio.sleep(0.05)
    for child in children:
        if child.poll() is not None:
            print(f"rscale: worker pid {child.pid} exited with code {child.returncode}", file=sys.stderr, flush=True)


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a listening TCP socket on `port` (Linux /proc; elsewhere assume yes)."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return True
    inodes = set()
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return any(link.startswith("socket:[") and link[8:-1] in inodes for link in links)


def _stop_workers(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def _exit_with_parent(server: Any, parent_pid: int) -> None:
    """A worker stops when the process that started it is gone (even SIGKILLed): no orphan keeps the port."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(1.0)
    server.should_exit = True


def serve_main(argv: list[str] | None = None) -> None:
    """`serve`: the container entry point SageMaker runs; flags for local use.

    In a container the defaults hold: the package from SM_MODEL_DIR (/opt/ml/model), 0.0.0.0:8080
    (or SAGEMAKER_BIND_TO_PORT). Prediction logs go to --log-dir or RS_PREDICTIONS_DIR when set.
    """
    parser = argparse.ArgumentParser(prog="serve", description=serve_main.__doc__)
    parser.add_argument("command", nargs="?", choices=["serve"], help=argparse.SUPPRESS)  # `docker run image serve`
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument("--log-dir", default=os.environ.get("RS_PREDICTIONS_DIR") or None)
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="Larger requests get 413.")
    parser.add_argument(
        "--log-max-file-mb", type=float, default=_env_float("RS_PREDICTIONS_MAX_FILE_MB"),
        help="Start a new prediction log file once one reaches this size.",
    )
    parser.add_argument(
        "--log-max-file-minutes", type=float, default=_env_float("RS_PREDICTIONS_MAX_FILE_MINUTES"),
        help="Start a new prediction log file once one is this old.",
    )
    parser.add_argument("--workers", type=int, default=int(os.environ.get("RS_SERVING_WORKERS", "1")),
                        help="Server processes on the port (SO_REUSEPORT); 1 by default.")
    parser.add_argument("--loop", choices=LOOPS, default=os.environ.get("RS_SERVING_LOOP", "asyncio"),
                        help="Event loop: asyncio (default) or uvloop.")
    parser.add_argument("--http", choices=HTTP_PARSERS, default=os.environ.get("RS_SERVING_HTTP", "auto"),
                        help="HTTP parser; auto: httptools when installed, else h11.")
    parser.add_argument("--ready-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # an unknown or missing loop/http is said before the model loads, with where the value came from: argparse
    # checks --loop/--http given on the command line, not the defaults taken from RS_SERVING_LOOP/RS_SERVING_HTTP
    for check, value, flag, variable in ((event_loop, args.loop, "--loop", "RS_SERVING_LOOP"),
                                         (http_parser, args.http, "--http", "RS_SERVING_HTTP")):
        try:
            check(value)
        except (ValueError, ImportError) as exc:
            source = f"{variable}={value}" if os.environ.get(variable) == value else f"{flag} {value}"
            fix = "" if isinstance(exc, ImportError) else f"; fix: pass {flag} or set {variable} to one of them"
            print(f"serve: {exc} (from {source}){fix}", file=sys.stderr)  # an ImportError's message names its fix
            raise SystemExit(2) from None
    model_dir = Path(args.model_dir)
    if not model_dir.exists():
        print(f"serve: no model package at {model_dir}; set SM_MODEL_DIR or pass --model-dir", file=sys.stderr)
        raise SystemExit(2)
    serve(
        model_dir,
        host=args.host,
        port=args.port,
        log_dir=Path(args.log_dir) if args.log_dir else None,
        ready_file=Path(args.ready_file) if args.ready_file else None,
        max_body_bytes=args.max_body_bytes,
        log_max_file_bytes=int(args.log_max_file_mb * 1024 * 1024) if args.log_max_file_mb else None,
        log_max_file_age_s=args.log_max_file_minutes * 60 if args.log_max_file_minutes else None,
        workers=max(1, args.workers),
        parent_pid=args.parent_pid,
        loop=args.loop,
        http=args.http,
    )


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    try:
        return float(value) if value else None
    except ValueError:
        print(f"serve: {name}={value!r} is not a number; ignored", file=sys.stderr)
        return None


if __name__ == "__main__":
    serve_main()
