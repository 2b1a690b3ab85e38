"""Prediction logs into the warehouse: once per line, also while the endpoint is still writing; then joined with events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig
from rscale.data.feedback import feedback_sql, ingest_predictions
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


def test_feedback_query_finds_the_next_view_after_each_prediction(warehouse, project: Path):
    (predictions_dir("recs") / "a.jsonl").write_text(
        line("hit", "s1", ["x", "y", "z"]) + line("miss", "s2", ["x"]) + line("pending", "s3", ["x"])
    )
    ingest_predictions(warehouse, "recs")
    warehouse.append(
        "events",
        pa.table(
            {
                "session_id": ["s1", "s1", "s1", "s2"],
                "item_id": ["before", "y", "later", "q"],
                "event_type": ["view", "view", "view", "view"],
                "event_time": pa.array(
                    [
                        datetime(2026, 11, 2, 11, 59),
                        datetime(2026, 11, 2, 12, 1),
                        datetime(2026, 11, 2, 12, 2),
                        datetime(2026, 11, 2, 12, 5),
                    ],
                    pa.timestamp("us"),
                ),
            }
        ),
    )
    rows = {r["request_id"]: r for r in warehouse.query_arrow(feedback_sql("recs")).to_pylist()}
    assert rows["hit"]["next_item"] == "y" and rows["hit"]["rank"] == 2 and rows["hit"]["hit"] is True
    assert rows["miss"]["next_item"] == "q" and rows["miss"]["rank"] is None and rows["miss"]["hit"] is False
    assert rows["pending"]["next_item"] is None and rows["pending"]["hit"] is False
    assert "PARSE_JSON" in feedback_sql("recs", dialect="snowflake")
    with pytest.raises(ValueError, match="duckdb, snowflake"):
        feedback_sql("recs", dialect="bigquery")
