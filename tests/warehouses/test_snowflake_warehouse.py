"""The Snowflake warehouse against fakesnow's server, reached over HTTP by the real connector and Snowpark."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from snowflake_server import PASSWORD, Gate, create_database, fake_snowflake

import rscale.warehouses.snowflake as snowflake_module
from rscale.compiler.spec.checks import AcceptedValuesCheck, NotNullCheck, RangeCheck, RowCountCheck, UniqueCheck
from rscale.compiler.sql import compile_check
from rscale.compiler.stack import SnowflakeWarehouse as SnowflakeConfig
from rscale.compiler.stack import load_stack
from rscale.errors import ConfigurationError, RscaleError
from rscale.references import resolve_optional
from rscale.warehouses import connect
from rscale.warehouses.snowflake import (
    SnowflakeAuthError,
    SnowflakeConnectionError,
    SnowflakeObjectMissing,
    SnowflakeSQLError,
    SnowflakeWarehouse,
    connection_settings,
)

ENV = ("ACCOUNT", "USER", "PASSWORD", "AUTHENTICATOR", "PRIVATE_KEY_FILE", "DATABASE", "SCHEMA", "WAREHOUSE", "ROLE",
       "HOST", "PORT", "PROTOCOL", "DEFAULT_CONNECTION_NAME")


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[dict[str, Any], Gate]]:
    with fake_snowflake() as (fields, gate):
        create_database(fields)
        yield fields, gate


@pytest.fixture(autouse=True)
def quick_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    # The connector's login retry budget; short here so a failing test fails fast.
    monkeypatch.setattr(snowflake_module, "LOGIN_TIMEOUT_S", 10)
    for name in ENV:
        monkeypatch.delenv(f"SNOWFLAKE_{name}", raising=False)


@pytest.fixture
def warehouse(fake: tuple[dict[str, Any], Gate]) -> Iterator[SnowflakeWarehouse]:
    fields, _ = fake
    with SnowflakeWarehouse(SnowflakeConfig.model_validate(fields)) as opened:
        opened.replace("events", EVENTS)
        yield opened


T0 = dt.datetime(2026, 9, 1, 8, 0)
EVENTS = pa.table(
    {
        "session_id": [1, 1, 1, 2, 2, 3],
        "item_id": [10, 11, 12, 20, 21, 30],
        "event_type": ["view", "view", "purchase", "view", "view", "view"],
        "event_time": pa.array([T0 + dt.timedelta(minutes=m) for m in (0, 1, 2, 5, 6, 9)], pa.timestamp("us")),
        "device": ["mobile", "mobile", "mobile", "desktop", "desktop", "tv"],
        "price": [1.5, 2.0, 2.0, None, 3.0, 4.0],
    }
)


def test_references_resolve_from_the_environment_only_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RS_TEST_SF_USER", "ada")
    where = "warehouse.user"
    assert resolve_optional("${env:RS_TEST_SF_USER}", where) == "ada"
    assert resolve_optional("${env:RS_TEST_SF_UNSET}", where) is None  # unset: fall back to SNOWFLAKE_USER
    assert resolve_optional("svc_${env:RS_TEST_SF_USER}", where) == "svc_ada"
    assert resolve_optional("plain", where) == "plain"
    assert resolve_optional(None, where) is None
    with pytest.raises(ConfigurationError) as caught:  # no ZenML secret of that name in the test store
        resolve_optional("${secret:snowflake_password}", "warehouse.password")
    assert "zenml secret create snowflake_password" in str(caught.value.fix)


def test_stack_values_win_over_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "from-env")
    monkeypatch.setenv("SNOWFLAKE_ROLE", "ANALYST")
    monkeypatch.setenv("SNOWFLAKE_PORT", "8085")
    monkeypatch.setenv("RS_TEST_SF_ACCOUNT", "from-stack")
    settings = connection_settings(
        SnowflakeConfig(kind="snowflake", account="${env:RS_TEST_SF_ACCOUNT}", authenticator="externalbrowser")
    )
    assert settings["account"] == "from-stack"
    assert settings["role"] == "ANALYST" and settings["port"] == 8085
    assert settings["authenticator"] == "externalbrowser"  # passed through as is
    assert "password" not in settings


def test_no_account_anywhere_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SNOWFLAKE_HOME", str(tmp_path))  # no connections.toml there
    with pytest.raises(ConfigurationError) as caught:
        connection_settings(SnowflakeConfig(kind="snowflake"))
    assert "SNOWFLAKE_ACCOUNT" in caught.value.fix


def test_the_snowflake_stack_reaches_a_server_named_by_environment_variables(
    fake: tuple[dict[str, Any], Gate], monkeypatch: pytest.MonkeyPatch
) -> None:
    fields, _ = fake
    for name in ("account", "user", "password", "host", "port", "protocol", "database", "schema"):
        monkeypatch.setenv(f"SNOWFLAKE_{name.upper()}", str(fields[name]))
    stack = load_stack("snowflake")
    assert stack.warehouse.kind == "snowflake"
    assert PASSWORD not in stack.model_dump_json()  # the stack holds references, never the value
    with connect(stack.warehouse) as warehouse:
        assert warehouse.scalar("SELECT CURRENT_DATABASE()") == "RS"


def test_snowflake_sql_runs_and_comes_back_as_arrow_with_rscale_names(warehouse: SnowflakeWarehouse) -> None:
    latest = warehouse.query_arrow(
        "SELECT session_id, item_id, IFF(event_type = 'purchase', 1, 0) AS bought, "
        "DATEADD(day, 1, event_time) AS next_day FROM events "
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY event_time DESC) = 1 ORDER BY session_id"
    )
    assert latest.column_names == ["session_id", "item_id", "bought", "next_day"]
    assert latest.column("item_id").to_pylist() == [12, 21, 30]
    assert latest.column("bought").to_pylist() == [1, 0, 0]
    assert latest.column("next_day").to_pylist()[0] == T0 + dt.timedelta(days=1, minutes=2)

    flattened = warehouse.query_arrow(
        "WITH s AS (SELECT session_id, ARRAY_AGG(IFF(event_type = 'view', item_id, NULL)) "
        "WITHIN GROUP (ORDER BY event_time) AS items FROM events GROUP BY session_id) "
        "SELECT s.session_id, f.value::INT AS item, f.index AS position "
        "FROM s, LATERAL FLATTEN(input => s.items) f WHERE f.value IS NOT NULL ORDER BY 1, 3"
    )
    assert flattened.column("item").to_pylist() == [10, 11, 20, 21, 30]
    assert flattened.column("position").to_pylist() == [0, 1, 0, 1, 0]


def test_an_array_column_comes_back_as_a_list(warehouse: SnowflakeWarehouse) -> None:
    table = warehouse.query_arrow(
        "SELECT session_id, ARRAY_AGG(IFF(item_id > 10, item_id, NULL)) WITHIN GROUP (ORDER BY event_time) AS items "
        "FROM events WHERE session_id = 2 GROUP BY session_id"
    )
    assert pa.types.is_list(table.schema.field("items").type)
    assert table.column("items").to_pylist() == [[20, 21]]


def test_an_empty_result_keeps_its_columns(warehouse: SnowflakeWarehouse) -> None:
    empty = warehouse.query_arrow("SELECT session_id, device FROM events WHERE 1 = 0")
    assert empty.num_rows == 0 and empty.column_names == ["session_id", "device"]


def test_schema_comes_from_snowflake_in_duckdb_spelling(warehouse: SnowflakeWarehouse) -> None:
    schema = warehouse.schema("SELECT session_id, device, price, event_time, COUNT(*) OVER () AS n FROM events")
    assert schema == [
        ("session_id", "BIGINT"),
        ("device", "VARCHAR"),
        ("price", "DOUBLE"),
        ("event_time", "TIMESTAMP"),
        ("n", "BIGINT"),
    ]


def test_checks_run_as_sql_in_snowflake(warehouse: SnowflakeWarehouse) -> None:
    data_sql = "SELECT session_id, device, price FROM events"

    def value(check: Any) -> Any:
        compiled = compile_check(check, data_sql, "snowflake")
        if compiled["sample_sql"]:
            warehouse.query_arrow(str(compiled["sample_sql"]))  # the sample query runs too
        return warehouse.scalar(str(compiled["value_sql"]))

    assert value(RowCountCheck(type="row_count", min=1)) == 6
    assert value(NotNullCheck(type="not_null", columns=["session_id", "price"])) == 1
    assert value(UniqueCheck(type="unique", columns=["session_id"])) == 2
    assert value(AcceptedValuesCheck(type="accepted_values", column="device", values=["mobile", "desktop"])) == 1
    assert value(RangeCheck(type="range", column="price", min=0, max=3)) == 1
    sample = warehouse.query_arrow(
        str(compile_check(RangeCheck(type="range", column="price", max=3), data_sql, "snowflake")["sample_sql"])
    )
    assert sample.column("price").to_pylist() == [4.0]


def test_append_writes_predictions_back(warehouse: SnowflakeWarehouse) -> None:
    predictions = pa.table(
        {
            "request_id": ["a", "b"],
            "session_id": [1, 2],
            "items": [[10, 11], [20]],
            "score": [0.9, 0.1],
            "logged_at": pa.array([T0, T0], pa.timestamp("us")),
        }
    )
    warehouse.execute("DROP TABLE IF EXISTS predictions_recs")
    assert warehouse.append("predictions_recs", predictions) == 2
    assert warehouse.append("predictions_recs", predictions.slice(0, 1)) == 1
    assert warehouse.table_exists("predictions_recs")
    # Stored under Snowflake's upper-case names, so plain SQL finds them without quotes.
    back = warehouse.query_arrow("SELECT request_id, session_id, items, score FROM predictions_recs ORDER BY request_id")
    assert back.to_pydict() == {
        "request_id": ["a", "a", "b"],
        "session_id": [1, 1, 2],
        "items": [[10, 11], [10, 11], [20]],
        "score": [0.9, 0.9, 0.1],
    }


def test_fingerprint_follows_the_data_not_the_clock(warehouse: SnowflakeWarehouse) -> None:
    sql = "SELECT session_id, COUNT(*) AS n FROM events GROUP BY session_id"
    before = warehouse.fingerprint(sql)
    assert warehouse.fingerprint(sql) == before
    assert warehouse.fingerprint(sql + " HAVING COUNT(*) > 1") != before
    warehouse.append("events", EVENTS.slice(0, 1))
    assert warehouse.fingerprint(sql) != before


def test_a_read_only_warehouse_refuses_to_write(fake: tuple[dict[str, Any], Gate]) -> None:
    fields, _ = fake
    with SnowflakeWarehouse(SnowflakeConfig.model_validate(fields), read_only=True) as warehouse:
        with pytest.raises(RscaleError, match="read-only"):
            warehouse.append("predictions_recs", pa.table({"a": [1]}))


def test_a_missing_table_names_snowflakes_error_code(warehouse: SnowflakeWarehouse) -> None:
    with pytest.raises(SnowflakeObjectMissing) as caught:
        warehouse.query_arrow("SELECT * FROM no_such_table")
    assert caught.value.code == "002003"
    assert "002003" in str(caught.value) and "NO_SUCH_TABLE" in str(caught.value).upper()
    assert PASSWORD not in str(caught.value)


def test_a_sql_error_names_snowflakes_error_code(warehouse: SnowflakeWarehouse) -> None:
    with pytest.raises(SnowflakeSQLError) as caught:
        warehouse.scalar("SELEC 1")
    assert caught.value.code and caught.value.code in str(caught.value)
    assert "SELEC 1" in str(caught.value)


def test_bad_credentials_are_refused_without_echoing_them(fake: tuple[dict[str, Any], Gate]) -> None:
    fields, _ = fake
    wrong = "wrong-" + PASSWORD
    with pytest.raises(SnowflakeAuthError) as caught:
        SnowflakeWarehouse(SnowflakeConfig.model_validate({**fields, "password": wrong}))
    message = f"{caught.value} {caught.value.fix}"
    assert caught.value.code == "390100" and "390100" in message
    assert wrong not in message and PASSWORD not in message
    assert "user fake" in message


def test_an_unreachable_account_is_a_short_connection_error(fake: tuple[dict[str, Any], Gate]) -> None:
    fields, _ = fake
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    snowflake_module.LOGIN_TIMEOUT_S = 3
    with pytest.raises(SnowflakeConnectionError) as caught:
        SnowflakeWarehouse(SnowflakeConfig.model_validate({**fields, "account": "no-such-account", "port": closed_port}))
    assert caught.value.code == "250001"
    assert "no-such-account" in str(caught.value) and PASSWORD not in str(caught.value)


def test_a_transient_outage_is_retried_and_then_given_up(fake: tuple[dict[str, Any], Gate]) -> None:
    fields, gate = fake
    config = SnowflakeConfig.model_validate(fields)
    gate.seen.clear()
    gate.unavailable_logins = 2
    with SnowflakeWarehouse(config) as warehouse:
        assert warehouse.scalar("SELECT 1") == 1
    assert gate.seen == [503, 503, 200]  # retried with backoff by the connector, then in

    snowflake_module.LOGIN_TIMEOUT_S = 3
    gate.seen.clear()
    gate.unavailable_logins = 10_000
    try:
        with pytest.raises(SnowflakeConnectionError) as caught:
            SnowflakeWarehouse(config)
    finally:
        gate.unavailable_logins = 0
    assert 1 < len(gate.seen) <= snowflake_module.LOGIN_RETRIES + 1  # several tries, then it stops
    assert PASSWORD not in str(caught.value)


def test_a_query_refused_forever_gives_up_after_the_retry_timeout(fake: tuple[dict[str, Any], Gate]) -> None:
    fields, gate = fake
    config = SnowflakeConfig.model_validate({**fields, "retry_timeout_s": 3})
    gate.queries_seen.clear()
    try:
        with SnowflakeWarehouse(config) as warehouse:
            gate.unavailable_queries = 10_000  # and so through close(), whose cancel query is refused too
            with pytest.raises(SnowflakeConnectionError) as caught:
                warehouse.scalar("SELECT 1")
            tries = len(gate.queries_seen)
    finally:
        gate.unavailable_queries = 0
    # Retried with backoff, each wait at least 1 s, and given up once 3 s had passed: at most 4 tries.
    assert 1 < tries <= 3 + 1
    assert caught.value.code == "250003"
    assert "retry_timeout_s" in str(caught.value) and "503" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    with SnowflakeWarehouse(config) as warehouse:  # the server is back: the next connection works
        assert warehouse.scalar("SELECT 1") == 1


def test_a_process_that_gave_up_on_a_query_still_exits() -> None:
    # No thread (a query timer, a retry loop) may outlive the failed query and hold the interpreter open.
    test = f"{__file__}::test_a_query_refused_forever_gives_up_after_the_retry_timeout"
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2],
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
