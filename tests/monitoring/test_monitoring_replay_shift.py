"""`rs replay` against a real local server, and the live/shifted demo traffic it sends."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rscale.data.seed import demo_tables
from rscale.data.shift import PENDING_TABLE, fresh_events, land_pending, live_sessions, shift_events
from rscale.models.champion import compare
from rscale.monitoring.replay import NO_LOG_HEADER, replay, request_records, rows_sql


@pytest.fixture
def echo_server() -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP server on 127.0.0.1 that records what it receives (422 for a record marked bad)."""
    seen: list[dict] = []

    async def invocations(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append({"body": body, "no_log": request.headers.get(NO_LOG_HEADER)})
        if body.get("bad"):
            return JSONResponse({"error": "bad"}, status_code=422)
        return JSONResponse({"predictions": [{"label": 1}]})

    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/invocations", invocations, methods=["POST"])]),
                                           host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.should_exit = True
        thread.join()


def test_replay_sends_every_record_and_counts_failures(echo_server) -> None:
    url, seen = echo_server
    records = [{"n": i} for i in range(40)] + [{"bad": True}]
    summary = replay(url, records, concurrency=4, no_log=True)
    assert summary.sent == 41 and summary.ok == 40 and summary.failed == 1
    assert summary.statuses == {"200": 40, "422": 1}
    assert "HTTP 422" in (summary.first_error or "")
    assert sorted(s["body"].get("n", -1) for s in seen) == [-1, *range(40)]
    assert {s["no_log"] for s in seen} == {"1"}


def test_replay_rows_become_request_records() -> None:
    rows = [{"session_id": "s1", "items": ["a"], "next_item": "b", "at": datetime(2026, 1, 1), "x": float("nan")}]
    assert request_records(rows, ["session_id", "items", "at", "x"]) == [
        {"session_id": "s1", "items": ["a"], "at": "2026-01-01T00:00:00", "x": None}
    ]
    assert rows_sql("events", 5, "snowflake", "duckdb") == "SELECT * FROM (\nSELECT * FROM events\n) AS replayed\nLIMIT 5"
    assert "IFF" not in rows_sql("SELECT IFF(a > 1, 1, 0) AS b FROM t", None, "snowflake", "duckdb")


def test_live_sessions_hold_back_the_next_view_until_landed() -> None:
    events = fresh_events(50, seed=0)
    _, training = demo_tables(sessions=50, seed=0)
    assert not set(events.column("session_id").to_pylist()) & set(training.column("session_id").to_pylist())
    assert set(events.column("item_id").to_pylist()) <= set(demo_tables(sessions=1, seed=0)[0].column("item_id").to_pylist())
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    history, pending = live_sessions(events, now=now, tag="t-")
    assert history.num_rows + pending.num_rows == events.num_rows
    assert all(s.startswith("live-t-") for s in history.column("session_id").to_pylist())
    assert max(history.column("event_time").to_pylist()) <= now.replace(tzinfo=None)
    held = pending.to_pylist()
    # each held-back part starts with the session's last view
    firsts: dict[str, dict] = {}
    for row in sorted(held, key=lambda r: r["event_time"]):
        firsts.setdefault(row["session_id"], row)
    assert {row["event_type"] for row in firsts.values()} == {"view"}
    landed = land_pending(pending, now=datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    assert min(landed.column("event_time").to_pylist()) > datetime(2026, 12, 1, 13, 0)
    assert PENDING_TABLE == "pending_events"


def test_shifted_traffic_has_new_items_prices_and_one_device() -> None:
    _, events = demo_tables(sessions=200, seed=1)
    shifted = shift_events(events, seed=1)
    catalogue = set(events.column("item_id").to_pylist())
    items = shifted.column("item_id").to_pylist()
    assert 0.5 < sum(i not in catalogue for i in items) / len(items) < 0.7
    assert set(shifted.column("device").to_pylist()) == {"tablet"}
    assert shifted.column("price").to_pylist()[0] == pytest.approx(3 * events.column("price").to_pylist()[0])
    assert isinstance(shifted, pa.Table) and json.dumps(shifted.schema.names)


def test_champion_comparison_uses_the_gate_margin() -> None:
    class Gate:
        metric = "auc"
        min_lift = 0.02

    worse = compare("conversion:3", 0.80, {"auc": 0.70}, Gate())
    assert not worse.passed and "0.7000" in worse.reason and "0.8000" in worse.reason
    assert "keep the champion in production" in worse.reason
    assert compare("conversion:3", 0.80, {"auc": 0.79}, Gate()).passed  # within the 2% margin
    Gate.min_lift = -1.0  # a gate that lets a model trail its baseline by 100% lets it trail the champion as much
    assert compare("conversion:3", 0.80, {"auc": 0.80}, Gate()).passed
    assert compare("conversion:3", 0.80, {"auc": 0.10}, Gate()).passed
    Gate.min_lift = 0.02
    Gate.metric = "log_loss"  # lower is better
    assert not compare("conversion:3", 0.40, {"log_loss": 0.50}, Gate()).passed
    assert compare("conversion:3", 0.40, {"log_loss": 0.35}, Gate()).passed


def test_rs_seed_shift_and_live_write_the_warehouse(project) -> None:
    from typer.testing import CliRunner

    from rscale.cli.app import app
    from rscale.cli.main import main  # noqa: F401  (registers every command)
    from rscale.compiler.stack import DuckDBWarehouse
    from rscale.warehouses import connect

    runner = CliRunner()
    assert runner.invoke(app, ["seed", "--land"]).exit_code == 2  # nothing seeded yet: says to run rs seed
    assert runner.invoke(app, ["seed", "--sessions", "100", "--shift"]).exit_code == 0
    with connect(DuckDBWarehouse(), read_only=True) as wh:
        assert wh.query_arrow("SELECT DISTINCT device FROM events").column("device").to_pylist() == ["tablet"]
    live = runner.invoke(app, ["seed", "--live", "30"])
    assert live.exit_code == 0, live.output
    with connect(DuckDBWarehouse(), read_only=True) as wh:
        pending = wh.scalar(f"SELECT COUNT(*) FROM {PENDING_TABLE}")
        assert pending >= 30 * 0.5 and wh.scalar("SELECT COUNT(DISTINCT session_id) FROM events WHERE session_id LIKE 'live-%'") == 30
    landed = runner.invoke(app, ["seed", "--land"])
    assert landed.exit_code == 0 and f"landed {pending}" in landed.output
    with connect(DuckDBWarehouse(), read_only=True) as wh:
        assert not wh.table_exists(PENDING_TABLE)
