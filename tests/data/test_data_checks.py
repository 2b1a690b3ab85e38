"""Every check type, compiled by the compiler and run in DuckDB, passes on good rows and fails on bad ones."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from pydantic import TypeAdapter
from rich.console import Console

from rscale.compiler.plan import CheckPlan
from rscale.compiler.spec.checks import Check
from rscale.compiler.sql import compile_check
from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig
from rscale.data.checks import CheckReport, run_checks
from rscale.warehouses import connect

DATA_SQL = "SELECT * FROM examples"


def plan(check: dict[str, Any]) -> CheckPlan:
    """A CheckPlan as build_plan makes it, over DATA_SQL."""
    spec = TypeAdapter(Check).validate_python(check)
    rule = {k: v for k, v in spec.model_dump(mode="json").items() if k in ("min", "max", "max_age_hours", "now")}
    rule["spec"] = spec.model_dump(mode="json", exclude_none=True)
    return CheckPlan(
        name=spec.name or spec.type,
        type=spec.type,
        severity=spec.severity,
        rule=rule,
        **compile_check(spec, DATA_SQL, "duckdb"),  # type: ignore[arg-type]
    )


@pytest.fixture
def warehouse():
    with connect(DuckDBConfig(path=":memory:")) as wh:
        wh.append(
            "examples",
            pa.table(
                {
                    "session_id": ["a", "b", "c", "d"],
                    "next_item": ["x", "y", "z", "w"],
                    "device": ["mobile", "desktop", "tablet", "mobile"],
                    "price": [1.0, 2.5, 3.0, 4.0],
                    "ts": pa.array([1_700_000_000_000_000] * 3 + [1_700_003_600_000_000], pa.timestamp("us")),
                }
            ),
        )
        yield wh


def run_one(warehouse, check: dict[str, Any]):
    report = run_checks(warehouse, [plan(check)])
    (result,) = report.results
    return report, result


GOOD = [
    {"type": "row_count", "min": 4, "max": 4},
    {"type": "not_null", "columns": ["session_id", "next_item"]},
    {"type": "unique", "columns": ["session_id"]},
    {"type": "accepted_values", "column": "device", "values": ["mobile", "desktop", "tablet"]},
    {"type": "range", "column": "price", "min": 0, "max": 10},
    {"type": "freshness", "column": "ts", "max_age_hours": 2, "now": "2023-11-14T23:13:20+00:00"},
    {"type": "sql", "sql": "SELECT * FROM data WHERE price > 100"},
]


@pytest.mark.parametrize("check", GOOD, ids=[c["type"] for c in GOOD])
def test_each_check_passes_on_good_rows(warehouse, check):
    report, result = run_one(warehouse, check)
    assert result.passed, result.message
    assert report.ok and not report.failed
    assert result.samples == []


def test_row_count_fails_outside_its_bounds(warehouse):
    report, result = run_one(warehouse, {"type": "row_count", "min": 10})
    assert not result.passed and result.value == 4
    assert result.message == "4 rows, expected at least 10"
    assert report.failed == [result] and not report.ok


def test_not_null_counts_and_samples_offending_rows(warehouse):
    warehouse.execute("UPDATE examples SET next_item = NULL WHERE session_id IN ('b', 'd')")
    _, result = run_one(warehouse, {"type": "not_null", "columns": ["next_item"]})
    assert not result.passed and result.value == 2
    assert result.message == "2 rows have NULL in next_item"
    assert sorted(row["session_id"] for row in result.samples) == ["b", "d"]
    assert all(row["next_item"] is None for row in result.samples)


def test_unique_counts_duplicated_keys(warehouse):
    warehouse.append("examples", pa.table({"session_id": ["a", "a", "b"]}))
    _, result = run_one(warehouse, {"type": "unique", "columns": ["session_id"]})
    assert not result.passed and result.value == 2
    assert result.message == "2 values of (session_id) appear more than once"
    assert result.samples[0] == {"session_id": "a", "duplicates": 3}


def test_accepted_values_reports_the_rows_outside(warehouse):
    warehouse.execute("UPDATE examples SET device = 'watch' WHERE session_id = 'c'")
    _, result = run_one(warehouse, {"type": "accepted_values", "column": "device", "values": ["mobile", "tablet"]})
    assert not result.passed and result.value == 2  # 'desktop' is not accepted here either
    assert result.message == "2 rows have device outside [mobile, tablet]"
    assert {row["device"] for row in result.samples} == {"watch", "desktop"}


def test_range_reports_rows_outside_the_bounds(warehouse):
    _, result = run_one(warehouse, {"type": "range", "column": "price", "min": 2})
    assert not result.passed and result.value == 1
    assert result.message == "1 row has price outside [2, inf]"
    assert result.samples[0]["price"] == 1.0


def test_freshness_fails_when_the_newest_row_is_too_old(warehouse):
    _, result = run_one(
        warehouse, {"type": "freshness", "column": "ts", "max_age_hours": 2, "now": "2023-11-16T00:00:00"}
    )
    assert not result.passed
    assert result.value == "2023-11-14T23:13:20"
    assert "24.8 hours old" in result.message and "more than 2" in result.message


def test_freshness_fails_on_an_empty_table(warehouse):
    warehouse.execute("DELETE FROM examples")
    _, result = run_one(warehouse, {"type": "freshness", "column": "ts", "max_age_hours": 2})
    assert not result.passed and result.value is None and "no rows" in result.message


def test_sql_check_fails_on_returned_rows(warehouse):
    _, result = run_one(warehouse, {"type": "sql", "sql": "SELECT session_id FROM data WHERE price > 2"})
    assert not result.passed and result.value == 3
    assert result.message == "the check query returned 3 rows"
    assert len(result.samples) == 3


def test_a_warn_check_reports_without_failing_the_run(warehouse):
    report, result = run_one(warehouse, {"type": "row_count", "min": 10, "severity": "warn"})
    assert not result.passed
    assert report.ok and report.failed == [] and report.warnings == [result]


def test_a_check_that_cannot_run_is_a_failure_with_the_reason(warehouse):
    report, result = run_one(warehouse, {"type": "not_null", "columns": ["no_such_column"]})
    assert not result.passed and result.error and "no_such_column" in result.error
    assert report.failed == [result]


def test_every_check_runs_and_the_report_is_json_and_renders(warehouse):
    warehouse.execute("UPDATE examples SET next_item = NULL WHERE session_id = 'a'")
    checks = [plan(c) for c in GOOD] + [plan({"type": "row_count", "min": 10, "name": "enough_rows"})]
    report = run_checks(warehouse, checks)
    assert [r.passed for r in report.results] == [True, False, True, True, True, True, True, False]
    assert [r.name for r in report.failed] == ["not_null", "enough_rows"]
    again = CheckReport.model_validate_json(json.dumps(report.model_dump(mode="json")))
    assert again == report
    console = Console(width=140, record=True)
    console.print(report.render())
    shown = console.export_text()
    assert "FAIL" in shown and "1 row has NULL in session_id or next_item" in shown and "enough_rows" in shown
    assert "FAIL  enough_rows (row_count): 4 rows, expected at least 10" in report.render_text()
