"""The shipped specs' Snowflake queries, transpiled for DuckDB, on the seeded demo shop: the column contracts hold."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rscale.compiler.compilation import compile_spec
from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig
from rscale.data.checks import run_checks
from rscale.data.seed import seed_demo
from rscale.warehouses import connect

SESSIONS = 1500


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> DuckDBConfig:
    config = DuckDBConfig(path=str(tmp_path_factory.mktemp("shop") / "warehouse.duckdb"))
    seed_demo(config, sessions=SESSIONS, seed=0)
    return config


def plan_for(repo: Path, spec: str):
    (plan,) = compile_spec(repo / "specs" / spec, offline=True).plans
    assert plan.data.dialect == "snowflake" and plan.data.warehouse == "duckdb"
    return plan


def test_recs_query_returns_histories_without_nulls_and_the_next_view(repo: Path, seeded: DuckDBConfig):
    plan = plan_for(repo, "recs.yaml")
    with connect(seeded, read_only=True) as wh:
        assert wh.schema(plan.data.sql) == [
            ("session_id", "VARCHAR"),
            ("items", "VARCHAR[]"),
            ("next_item", "VARCHAR"),
            ("session_end", "TIMESTAMP"),
        ]
        table = wh.query_arrow(plan.data.sql)
        views = wh.query_arrow(
            "SELECT session_id, item_id, event_time FROM events WHERE event_type = 'view' ORDER BY session_id, event_time"
        )
        report = run_checks(wh, plan.checks)
    assert report.ok, report.render_text()
    assert table.num_rows > 0.9 * SESSIONS  # nearly every session has two views or more
    assert pc.min(pc.list_value_length(table["items"])).as_py() >= 1
    assert pc.list_flatten(table["items"]).null_count == 0
    assert table["next_item"].null_count == 0
    # Against the events themselves: history = every view but the last, in time order; next = the last.
    by_session: dict[str, list[str]] = {}
    for session, item in zip(views["session_id"].to_pylist(), views["item_id"].to_pylist(), strict=True):
        by_session.setdefault(session, []).append(item)
    for row in table.slice(0, 200).to_pylist():
        seen = by_session[row["session_id"]]
        assert row["items"] == seen[:-1]
        assert row["next_item"] == seen[-1]


def test_conversion_query_returns_session_features_and_a_binary_target(repo: Path, seeded: DuckDBConfig):
    plan = plan_for(repo, "conversion.yaml")
    with connect(seeded, read_only=True) as wh:
        schema = dict(wh.schema(plan.data.sql))
        table = wh.query_arrow(plan.data.sql)
        report = run_checks(wh, plan.checks)
    assert report.ok, report.render_text()
    assert list(schema) == [
        "session_id",
        "n_views",
        "n_carts",
        "n_categories",
        "duration_s",
        "device",
        "avg_price",
        "purchased",
        "session_start",
    ]
    assert schema["n_views"] == "INTEGER" and schema["n_carts"] == "INTEGER"  # not HUGEINT (Arrow decimal)
    assert schema["session_start"] == "TIMESTAMP" and schema["avg_price"] == "DOUBLE"
    assert table.num_rows == SESSIONS
    assert set(table["purchased"].to_pylist()) == {0, 1}
    assert pa.types.is_integer(table.schema.field("duration_s").type)
    rate = pc.mean(table["purchased"]).as_py()
    assert 0.05 < rate < 0.6
    # purchases need a cart, and the target does not leak into the features: every buyer had a cart
    buyers = table.filter(pc.equal(table["purchased"], 1))
    assert pc.min(buyers["n_carts"]).as_py() >= 1
