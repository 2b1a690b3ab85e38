"""The demo shop: the tables' contract, determinism, and the structure the specs' models rely on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

import rscale.cli.data  # noqa: F401  (registers `rs seed`)
from rscale.cli.app import app
from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig
from rscale.data.seed import demo_tables, seed_demo
from rscale.warehouses import connect

SESSIONS = 1500


@pytest.fixture(scope="module")
def tables() -> tuple[pa.Table, pa.Table]:
    return demo_tables(sessions=SESSIONS, seed=0)


def test_tables_have_the_documented_columns(tables):
    items, events = tables
    assert items.schema == pa.schema([("item_id", pa.string()), ("category", pa.string()), ("price", pa.float64())])
    assert events.schema == pa.schema(
        [
            ("session_id", pa.string()),
            ("user_id", pa.string()),
            ("item_id", pa.string()),
            ("category", pa.string()),
            ("event_type", pa.string()),
            ("event_time", pa.timestamp("us")),
            ("device", pa.string()),
            ("price", pa.float64()),
        ]
    )
    assert set(pc.unique(events["event_type"]).to_pylist()) == {"view", "add_to_cart", "purchase"}
    assert set(pc.unique(events["device"]).to_pylist()) == {"mobile", "desktop", "tablet"}
    assert all(column.null_count == 0 for column in events.columns)
    assert pc.count_distinct(events["session_id"]).as_py() == SESSIONS
    assert pc.min(items["price"]).as_py() > 0
    span = pc.max(events["event_time"]).as_py() - pc.min(events["event_time"]).as_py()
    assert 55 <= span.days <= 60


def test_same_seed_same_tables_other_seed_other_tables(tables):
    again = demo_tables(sessions=SESSIONS, seed=0)
    assert again[0].equals(tables[0]) and again[1].equals(tables[1])
    assert not demo_tables(sessions=SESSIONS, seed=1)[1].equals(tables[1])


def test_events_are_in_time_order_within_a_session_and_purchases_follow_carts(tables):
    _, events = tables
    session = events["session_id"].to_numpy(zero_copy_only=False)
    seconds = events["event_time"].cast(pa.int64()).to_numpy()
    same = session[1:] == session[:-1]
    assert (np.diff(seconds)[same] > 0).all()  # strictly increasing: no ties for the recs query to break
    kinds = events["event_type"].to_numpy(zero_copy_only=False)
    buyers = set(session[kinds == "purchase"])
    carters = set(session[kinds == "add_to_cart"])
    assert buyers and buyers <= carters


def test_item_popularity_follows_a_power_law(tables):
    _, events = tables
    views = events.filter(pc.equal(events["event_type"], "view"))
    counts = np.sort(pc.value_counts(views["item_id"]).field("counts").to_numpy())[::-1]
    top_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_share > 0.35  # the top tenth of items takes far more than a tenth of the views
    # log-log slope of count against rank over the head is clearly negative
    head = counts[:200]
    slope = np.polyfit(np.log(np.arange(1, len(head) + 1)), np.log(head), 1)[0]
    assert slope < -0.4


def test_sessions_have_an_intent_beyond_their_last_item(tables):
    """Most of a session's views share one category, far more than chance with 24 categories."""
    _, events = tables
    views = events.filter(pc.equal(events["event_type"], "view"))
    grouped = views.group_by(["session_id", "category"]).aggregate([("item_id", "count")])
    per_session = grouped.group_by("session_id").aggregate([("item_id_count", "max"), ("item_id_count", "sum")])
    long = per_session.filter(pc.greater_equal(per_session["item_id_count_sum"], 5))
    share = pc.divide(long["item_id_count_max"].cast(pa.float64()), long["item_id_count_sum"].cast(pa.float64()))
    assert pc.mean(share).as_py() > 0.5


def test_seed_demo_writes_and_replaces_the_tables(project: Path):
    summary = seed_demo(DuckDBConfig(path=".rs/demo.duckdb"), sessions=400, seed=2)
    assert summary["path"] == str(project / ".rs" / "demo.duckdb")
    assert summary["tables"]["items"] == 2000
    seed_demo(DuckDBConfig(path=".rs/demo.duckdb"), sessions=300, seed=2)
    with connect(DuckDBConfig(path=".rs/demo.duckdb"), read_only=True) as wh:
        assert wh.scalar("SELECT COUNT(DISTINCT session_id) FROM events") == 300
        assert wh.scalar("SELECT COUNT(*) FROM items") == 2000


def test_rs_seed_prints_a_summary(project: Path):
    result = CliRunner().invoke(app, ["seed", "--sessions", "300"])
    assert result.exit_code == 0, result.output
    assert "events" in result.output and "items" in result.output and "2,000" in result.output
    with connect(DuckDBConfig(), read_only=True) as wh:  # the local stack's default file
        assert wh.scalar("SELECT COUNT(DISTINCT session_id) FROM events") == 300


def test_rs_seed_refuses_a_snowflake_stack_with_a_fix(project: Path):
    stack = project / "snow.yaml"
    stack.write_text("name: snow\nwarehouse: {kind: snowflake, account: acme}\n")
    result = CliRunner().invoke(app, ["seed", "--sessions", "300", "--stack", str(stack)])
    assert result.exit_code == 1
    assert "snowflake" in result.output and "fix:" in result.output
