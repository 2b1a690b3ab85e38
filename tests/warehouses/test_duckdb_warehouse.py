"""The DuckDB warehouse: reading, schemas without running, fingerprints that notice edits, appends, locks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig
from rscale.errors import RscaleError
from rscale.warehouses import Warehouse, connect
from rscale.warehouses.duckdb import DuckDBWarehouse, tables_read


@pytest.fixture
def warehouse(project: Path):
    with connect(DuckDBConfig(path=".rs/test.duckdb")) as wh:
        wh.execute("CREATE TABLE events AS SELECT range AS id, 'item' || range AS item_id FROM range(100)")
        wh.execute("CREATE TABLE other AS SELECT 1 AS x")
        yield wh


def test_connect_picks_the_registered_implementation_and_resolves_the_path_in_the_project(project: Path):
    with connect(DuckDBConfig(path=".rs/w.duckdb")) as wh:
        assert isinstance(wh, DuckDBWarehouse)
        assert isinstance(wh, Warehouse)
        assert wh.path == project / ".rs" / "w.duckdb"
    assert (project / ".rs" / "w.duckdb").exists()


def test_query_scalar_and_schema(warehouse: Warehouse):
    table = warehouse.query_arrow("SELECT id, item_id FROM events WHERE id < 3 ORDER BY id")
    assert table.column_names == ["id", "item_id"]
    assert table.column("item_id").to_pylist() == ["item0", "item1", "item2"]
    assert warehouse.scalar("SELECT COUNT(*) FROM events") == 100
    assert warehouse.scalar("SELECT id FROM events WHERE id < 0") is None
    assert warehouse.schema("SELECT id, item_id, [item_id] AS items FROM events") == [
        ("id", "BIGINT"),
        ("item_id", "VARCHAR"),
        ("items", "VARCHAR[]"),
    ]


def test_schema_does_not_run_the_query(warehouse: Warehouse):
    failing = "SELECT id, error('this query was run') AS boom FROM events"
    with pytest.raises(Exception, match="this query was run"):
        warehouse.query_arrow(failing)
    assert [name for name, _ in warehouse.schema(failing)] == ["id", "boom"]


def test_fingerprint_changes_when_a_row_changes_and_not_otherwise(warehouse: Warehouse):
    sql = "WITH data AS (SELECT * FROM events) SELECT item_id FROM data WHERE id < 50"
    first = warehouse.fingerprint(sql)
    assert warehouse.fingerprint(sql) == first
    warehouse.execute("UPDATE other SET x = 2")  # a table the query does not read
    assert warehouse.fingerprint(sql) == first
    warehouse.execute("UPDATE events SET item_id = 'edited' WHERE id = 99")  # same row count, new content
    edited = warehouse.fingerprint(sql)
    assert edited != first
    warehouse.execute("INSERT INTO events VALUES (100, 'new')")
    assert warehouse.fingerprint(sql) not in (first, edited)


def test_fingerprint_of_a_table_function_falls_back_to_the_result(warehouse: Warehouse, project: Path):
    path = project / "rows.csv"
    path.write_text("a\n1\n2\n")
    sql = f"SELECT * FROM read_csv('{path}')"
    assert tables_read(sql) is None
    before = warehouse.fingerprint(sql)
    path.write_text("a\n1\n3\n")
    assert warehouse.fingerprint(sql) != before


def test_tables_read_skips_cte_names():
    assert tables_read("WITH views AS (SELECT * FROM events) SELECT * FROM views JOIN main.items USING (id)") == {
        "events",
        "main.items",
    }


def test_append_creates_then_appends_by_name(warehouse: Warehouse):
    assert not warehouse.table_exists("log")
    assert warehouse.append("log", pa.table({"a": [1, 2], "b": ["x", "y"]})) == 2
    assert warehouse.table_exists("log")
    assert warehouse.append("log", pa.table({"b": ["z"], "a": [3]})) == 1  # column order does not matter
    assert warehouse.query_arrow("SELECT a, b FROM log ORDER BY a").to_pydict() == {
        "a": [1, 2, 3],
        "b": ["x", "y", "z"],
    }


def test_read_only_refuses_writes_and_a_missing_file(project: Path):
    config = DuckDBConfig(path=".rs/ro.duckdb")
    with pytest.raises(RscaleError) as missing:
        connect(config, read_only=True)
    assert "rs seed" in (missing.value.fix or "")
    with connect(config) as wh:
        wh.execute("CREATE TABLE t AS SELECT 1 AS x")
    with connect(config, read_only=True) as wh:
        assert wh.scalar("SELECT x FROM t") == 1
        with pytest.raises(RscaleError, match="read-only"):
            wh.append("t", pa.table({"x": [2]}))


def test_a_file_locked_by_another_process_names_the_holder_and_the_fix(project: Path):
    path = project / ".rs" / "locked.duckdb"
    path.parent.mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(path)!r})\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        for read_only in (False, True):
            with pytest.raises(RscaleError) as locked:
                connect(DuckDBConfig(path=str(path)), read_only=read_only)
            assert f"PID {holder.pid}" in str(locked.value)
            assert locked.value.fix and f"kill {holder.pid}" in locked.value.fix
    finally:
        holder.communicate("", timeout=30)
    with connect(DuckDBConfig(path=str(path))) as wh:  # free again once the holder exits
        assert wh.scalar("SELECT 1") == 1


def test_in_memory_warehouse():
    with connect(DuckDBConfig(path=":memory:")) as wh:
        wh.append("t", pa.table({"x": [1, 2, 3]}))
        assert wh.scalar("SELECT SUM(x) FROM t") == 6
        assert wh.path is None


def test_one_process_cannot_hold_the_file_in_both_modes(project: Path):
    config = DuckDBConfig(path=".rs/modes.duckdb")
    with connect(config) as wh:
        wh.execute("CREATE TABLE t AS SELECT 1 AS x")
    with connect(config, read_only=True):
        with pytest.raises(RscaleError) as both:
            connect(config)
    assert "already has it open" in str(both.value) and both.value.fix
    with connect(config) as wh:  # closed readers free the file for a writer
        assert wh.scalar("SELECT x FROM t") == 1
