"""`rs replay`: send warehouse rows to an endpoint as requests, for backfills, shadow and load tests, and demos.

Each row becomes one request record (the request schema's fields: the inputs and the id). Requests go out
at most `rate` per second (a fixed schedule, so bursts never exceed it) with at most `concurrency` in
flight, on asyncio with one httpx client. `no_log` sends `X-Rscale-No-Log: 1`, which asks the endpoint not
to log the predictions (a load test should not become feedback).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

NO_LOG_HEADER = "X-Rscale-No-Log"
TIMEOUT_S = 30.0


class ReplaySummary(BaseModel):
    sent: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = Field(default_factory=dict)  # HTTP status (or the exception's name) -> count
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def rows_sql(source: str, n: int | None, dialect: str, warehouse: str) -> str:
    """SQL for the rows to replay: a table name or a query in `dialect`, capped at `n` rows."""
    import re

    from rscale.compiler.sql import transpile

    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.$]*", source.strip()):
        query = f"SELECT * FROM {source.strip()}"
    else:
        query = transpile(source, dialect, warehouse).sql
    return f"SELECT * FROM (\n{query}\n) AS replayed" + (f"\nLIMIT {int(n)}" if n is not None else "")


def request_records(rows: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    """The request record of each row: only the request schema's fields, as JSON-ready values."""
    return [{name: _json_ready(row.get(name)) for name in fields if name in row} for row in rows]


def _json_ready(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def replay(
    url: str,
    records: list[dict[str, Any]],
    *,
    rate: float | None = None,
    concurrency: int = 8,
    no_log: bool = False,
    progress: Callable[[int], None] = lambda _: None,
) -> ReplaySummary:
    """POST each record to `url` + /invocations; at most `rate` requests/s and `concurrency` in flight."""
    return asyncio.run(_replay(url.rstrip("/") + "/invocations", records, rate, concurrency, no_log, progress))


async def _replay(
    url: str,
    records: list[dict[str, Any]],
    rate: float | None,
    concurrency: int,
    no_log: bool,
    progress: Callable[[int], None],
) -> ReplaySummary:
    import httpx
    import numpy as np

    headers = {NO_LOG_HEADER: "1"} if no_log else {}
    limit = asyncio.Semaphore(concurrency)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    done = 0

    async def send(client: httpx.AsyncClient, index: int, record: dict[str, Any]) -> None:
        nonlocal done
        if rate:
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        async with limit:
            began = time.perf_counter()
            try:
                response = await client.post(url, json=record, headers=headers)
                statuses[str(response.status_code)] += 1
                if response.status_code >= 400 and not errors:
                    errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                if not errors:
                    errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append((time.perf_counter() - began) * 1000)
        done += 1
        progress(done)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits) as client:
        # Scheduled in chunks, so a million rows do not become a million pending tasks at once.
        chunk = max(concurrency * 64, 256)
        for start in range(0, len(records), chunk):
            await asyncio.gather(*(send(client, start + i, r) for i, r in enumerate(records[start : start + chunk])))
    ok = sum(count for status, count in statuses.items() if status.isdigit() and int(status) < 400)
    return ReplaySummary(
        sent=len(records),
        ok=ok,
        failed=len(records) - ok,
        seconds=time.perf_counter() - started,
        statuses=dict(statuses),
        latency_ms_p50=float(np.percentile(latencies, 50)) if latencies else None,
        latency_ms_p99=float(np.percentile(latencies, 99)) if latencies else None,
        first_error=errors[0] if errors else None,
    )
