"""Prediction logs into the warehouse: once per line, also while the endpoint is still writing or rotating its
files; retention; then joined with their outcomes as the spec's `feedback:` says, on DuckDB and Snowflake."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from rscale.compiler.spec.feedback import FeedbackSpec
from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig
from rscale.compiler.stack import SnowflakeWarehouse as SnowflakeConfig
from rscale.data.feedback import (
    create_outcomes_view,
    ingest_predictions,
    landed_outcomes,
    outcome_join_sql,
    predictions_table,
    remove_expired_logs,
)
from rscale.paths import predictions_dir
from rscale.serving.server import PredictionLog
from rscale.warehouses import connect

T0 = datetime(2026, 11, 2, 12, 0, 0, tzinfo=UTC).timestamp()


def line(request_id: str, session: str, items: list[str], ts: str = "2026-11-02T12:00:00+00:00") -> str:
    return (
        json.dumps(
            {
                "request_id": request_id,
                "ts": ts,
                "model_version": "3",
                "plan_hash": "abc",
                "index": 0,
                "inputs": {"session_id": session, "items": ["i1"]},
                "outputs": {"items": items, "scores": [0.5] * len(items)},
            }
        )
        + "\n"
    )


per_record_line = line


def request_line(request_id: str, session: str, items: list[str]) -> str:
    """The same prediction as the server writes it now: one line a request, `records` its count."""
    record = json.loads(line(request_id, session, items))
    del record["index"]
    record.update(records=1, inputs=[record["inputs"]], outputs=[record["outputs"]])
    return json.dumps(record) + "\n"


@pytest.fixture
def warehouse(project: Path):
    with connect(DuckDBConfig(path=".rs/feedback.duckdb")) as wh:
        yield wh


def test_ingest_loads_the_servers_log_once(warehouse, project: Path):
    log = PredictionLog(predictions_dir("recs"), model_version="7", plan_hash="f00")
    log.record(
        "r1",
        T0,
        [{"session_id": "s1", "items": ["a"]}, {"session_id": "s2", "items": ["b"]}],
        [{"items": ["x"]}, {"items": ["y"]}],
    )
    log.flush()
    assert ingest_predictions(warehouse, "recs") == 2
    assert ingest_predictions(warehouse, "recs") == 0
    rows = warehouse.query_arrow("SELECT * FROM recs_predictions ORDER BY record_index").to_pylist()
    assert [r["record_index"] for r in rows] == [0, 1]
    assert rows[0]["request_id"] == "r1" and rows[0]["model_version"] == "7" and rows[0]["plan_hash"] == "f00"
    assert json.loads(rows[1]["inputs"]) == {"session_id": "s2", "items": ["b"]}
    assert json.loads(rows[1]["outputs"]) == {"items": ["y"]}
    assert rows[0]["ts"] == datetime.fromtimestamp(T0, UTC).replace(tzinfo=None)  # stored as UTC
    log.record("r2", T0 + 5, [{"session_id": "s3", "items": ["c"]}], [{"items": ["z"]}])
    log.flush()
    assert ingest_predictions(warehouse, "recs") == 1
    assert warehouse.scalar("SELECT COUNT(*) FROM recs_predictions") == 3


def test_a_batch_is_one_line_and_ingests_as_the_per_record_lines_of_earlier_versions(warehouse, project: Path):
    """The server writes a request of N records as one line; ingest gives it the N rows, record_index 0..N-1,
    that the one-line-per-record files of earlier versions give (those stay readable, side by side)."""
    records = [{"session_id": f"s{i}", "items": ["a", str(i)]} for i in range(5)]
    outputs = [{"items": [f"x{i}"], "scores": [0.5]} for i in range(5)]
    log = PredictionLog(predictions_dir("recs"), model_version="7", plan_hash="f00")
    log.record("new", T0, records, outputs, latency_ms=1.5)
    log.flush()
    assert len(log.path.read_text().splitlines()) == 1
    old = [  # the lines the server wrote for the same request before 2026-12-02
        json.dumps({"request_id": "old", "ts": datetime.fromtimestamp(T0, UTC).isoformat(), "latency_ms": 1.5,
                    "model_version": "7", "plan_hash": "f00", "index": index, "inputs": record, "outputs": output})
        for index, (record, output) in enumerate(zip(records, outputs, strict=True))
    ]  # fmt: skip
    (predictions_dir("recs") / "19700101T000000000000Z-1.jsonl").write_text("\n".join(old) + "\n")
    assert ingest_predictions(warehouse, "recs") == 10
    columns = "record_index, model_version, plan_hash, ts, inputs, outputs"
    rows = {
        request_id: warehouse.query_arrow(
            f"SELECT {columns} FROM recs_predictions WHERE request_id = '{request_id}' ORDER BY record_index"
        ).to_pylist()
        for request_id in ("new", "old")
    }
    assert [row["record_index"] for row in rows["new"]] == [0, 1, 2, 3, 4]
    assert rows["new"] == rows["old"]
    assert [json.loads(row["inputs"]) for row in rows["new"]] == records
    assert ingest_predictions(warehouse, "recs") == 0


def test_a_line_still_being_written_is_loaded_once_when_complete(warehouse, project: Path):
    path = predictions_dir("recs") / "live.jsonl"
    first, second = line("r1", "s1", ["a"]), line("r2", "s2", ["b"])
    path.write_text(first + second[:20])  # the writer is mid-line
    assert ingest_predictions(warehouse, "recs") == 1
    with path.open("a") as handle:
        handle.write(second[20:])
    assert ingest_predictions(warehouse, "recs") == 1
    assert ingest_predictions(warehouse, "recs") == 0
    (predictions_dir("recs") / "other.jsonl").write_text(
        line("r3", "s3", ["c"]) + "not json\n" + line("r4", "s4", ["d"])
    )
    assert ingest_predictions(warehouse, "recs") == 2  # the broken line is skipped, not loaded
    ids = warehouse.query_arrow("SELECT request_id FROM recs_predictions ORDER BY request_id")["request_id"].to_pylist()
    assert ids == ["r1", "r2", "r3", "r4"]


def test_nothing_to_ingest(warehouse):
    assert ingest_predictions(warehouse, "nothing_logged") == 0
    assert not warehouse.table_exists("nothing_logged_predictions")


@pytest.mark.parametrize("per_request", [False, True], ids=["per-record lines", "per-request lines"])
def test_a_file_renamed_by_rotation_is_not_loaded_twice(warehouse, project: Path, per_request: bool):
    line = request_line if per_request else per_record_line
    folder = predictions_dir("recs")
    (folder / "20261102T120000-1.jsonl").write_text(line("r1", "s1", ["a"]) + line("r2", "s2", ["b"]))
    assert ingest_predictions(warehouse, "recs") == 2
    # the writer's rotation renames the file it was writing and appends one more line before closing it
    os.rename(folder / "20261102T120000-1.jsonl", folder / "20261102T120000-1.0001.jsonl")
    with (folder / "20261102T120000-1.0001.jsonl").open("a") as handle:
        handle.write(line("r3", "s3", ["c"]))
    (folder / "20261102T130000-1.jsonl").write_text(line("r4", "s4", ["d"]))  # and starts a new one
    assert ingest_predictions(warehouse, "recs") == 2
    assert ingest_predictions(warehouse, "recs") == 0
    ids = warehouse.query_arrow("SELECT request_id FROM recs_predictions ORDER BY request_id")["request_id"].to_pylist()
    assert ids == ["r1", "r2", "r3", "r4"]


def test_retention_removes_only_old_files_that_are_fully_loaded(warehouse, project: Path):
    folder = predictions_dir("recs")
    old, partial, fresh = folder / "a.jsonl", folder / "b.jsonl", folder / "c.jsonl"
    old.write_text(line("r1", "s1", ["a"]))
    partial.write_text(line("r2", "s2", ["b"]) + line("r3", "s3", ["c"])[:15])  # a line still being written
    fresh.write_text(line("r4", "s4", ["d"]))
    day_ago = time.time() - 86400
    for path in (old, partial):
        os.utime(path, (day_ago, day_ago))
    assert ingest_predictions(warehouse, "recs", retention_s=3600) == 3
    assert not old.exists() and partial.exists() and fresh.exists()
    assert warehouse.scalar("SELECT COUNT(*) FROM recs_predictions") == 3  # deleting a file never deletes rows
    assert remove_expired_logs({fresh: fresh.stat().st_size}, 3600, now=time.time() + 7200) == [fresh]


RECS_FEEDBACK = FeedbackSpec(
    table="events", time_column="event_time", outcome="item_id", where="event_type = 'view'", horizon="1h"
)
PURCHASE_FEEDBACK = FeedbackSpec(
    table="events", time_column="event_time", outcome="1", where="event_type = 'purchase'", horizon="2h", missing=0
)


def _events() -> pa.Table:
    at = [datetime(2026, 11, 2, 11, 59), datetime(2026, 11, 2, 12, 1), datetime(2026, 11, 2, 12, 2),
          datetime(2026, 11, 2, 12, 5), datetime(2026, 11, 2, 14, 0), datetime(2026, 11, 2, 12, 30)]
    return pa.table(
        {
            "session_id": ["s1", "s1", "s1", "s2", "s3", "s4"],
            "item_id": ["before", "y", "later", "q", "too_late", "bought"],
            "event_type": ["view", "view", "view", "view", "view", "purchase"],
            "event_time": pa.array(at, pa.timestamp("us")),
        }
    )


def _log_four() -> None:
    (predictions_dir("recs") / "a.jsonl").write_text(
        line("hit", "s1", ["x", "y", "z"]) + line("miss", "s2", ["x"]) + line("late", "s3", ["x"])
        + line("bought", "s4", ["x"])
    )


@pytest.fixture(params=["duckdb", "snowflake"])
def any_warehouse(request: pytest.FixtureRequest, project: Path) -> Iterator[tuple[str, object]]:
    """The same join on the embedded DuckDB and on Snowflake (a fakesnow server reached by the real connector)."""
    if request.param == "duckdb":
        with connect(DuckDBConfig(path=".rs/join.duckdb")) as wh:
            yield "duckdb", wh
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "warehouses"))
    from snowflake_server import create_database, fake_snowflake

    with fake_snowflake() as (fields, _gate):
        fields = {**fields, "database": f"RS_{request.node.name.split('[')[0][-20:].upper()}"}  # fakesnow keeps data
        create_database(fields)
        with connect(SnowflakeConfig.model_validate(fields)) as wh:
            yield "snowflake", wh


def test_outcomes_are_joined_in_the_warehouse_as_the_spec_says(any_warehouse):
    kind, wh = any_warehouse
    _log_four()
    ingest_predictions(wh, "recs")
    wh.append("events", _events())
    # the first view after each prediction within the horizon: s1's "y" (not the view before it), s2's "q";
    # s3's view came two hours later, past the 1h horizon
    rows = {r["request_id"]: r for r in wh.query_arrow(outcome_join_sql("recs", RECS_FEEDBACK, "session_id", "snowflake", kind)).to_pylist()}
    assert set(rows) == {"hit", "miss", "late", "bought"}
    assert rows["hit"]["outcome"] == "y" and rows["miss"]["outcome"] == "q" and rows["late"]["outcome"] is None
    assert json.loads(rows["hit"]["outputs"])["items"] == ["x", "y", "z"]
    # a purchase within two hours is 1; no purchase is 0 once the horizon has passed, unlabelled before
    joined = wh.query_arrow(outcome_join_sql("recs", PURCHASE_FEEDBACK, "session_id", "snowflake", kind))
    early = {r["request_id"]: r for r in landed_outcomes(joined, PURCHASE_FEEDBACK, datetime(2026, 11, 2, 13, 0, tzinfo=UTC)).to_pylist()}
    assert early["bought"]["landed"] and float(early["bought"]["outcome"]) == 1
    assert not early["hit"]["landed"]
    later = {r["request_id"]: r for r in landed_outcomes(joined, PURCHASE_FEEDBACK, datetime(2026, 11, 2, 15, 0, tzinfo=UTC)).to_pylist()}
    assert later["hit"]["landed"] and float(later["hit"]["outcome"]) == 0


def test_the_outcomes_view_exists_before_the_first_prediction(any_warehouse):
    kind, wh = any_warehouse
    wh.append("events", _events())
    create_outcomes_view(wh, "recs", outcome_join_sql("recs", RECS_FEEDBACK, "session_id", "snowflake", kind))
    assert wh.scalar("SELECT COUNT(*) FROM recs_outcomes") == 0
    _log_four()
    ingest_predictions(wh, "recs")
    assert wh.scalar("SELECT COUNT(*) FROM recs_outcomes WHERE outcome IS NOT NULL") == 2


def test_the_outcomes_view_lets_a_query_train_on_served_predictions(warehouse, project: Path):
    _log_four()
    ingest_predictions(warehouse, "recs")
    warehouse.append("events", _events())
    create_outcomes_view(warehouse, "recs", outcome_join_sql("recs", RECS_FEEDBACK, "session_id", "snowflake", "duckdb"))
    landed = warehouse.query_arrow("SELECT outcome_key, outcome FROM recs_outcomes WHERE outcome IS NOT NULL ORDER BY 1")
    assert landed.to_pylist() == [{"outcome_key": "s1", "outcome": "y"}, {"outcome_key": "s2", "outcome": "q"}]
    assert predictions_table("recs") == "recs_predictions"


def test_an_outcome_query_in_duckdb_dialect(warehouse, project: Path):
    _log_four()
    ingest_predictions(warehouse, "recs")
    warehouse.append("events", _events())
    feedback = FeedbackSpec(
        query="SELECT session_id AS outcome_key, item_id AS outcome, event_time AS outcome_time FROM events "
        "WHERE event_type = 'view' AND item_id <> 'y'",
        horizon="1h",
    )
    rows = {r["request_id"]: r["outcome"] for r in warehouse.query_arrow(outcome_join_sql("recs", feedback, "session_id", "duckdb", "duckdb")).to_pylist()}
    assert rows["hit"] == "later"
