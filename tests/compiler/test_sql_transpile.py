"""Snowflake SQL on DuckDB: what sqlglot carries over, what is rewritten to mean the same, what is warned about."""

from __future__ import annotations

import duckdb
import pytest

from rscale.compiler.spec.checks import AcceptedValuesCheck, NotNullCheck, RangeCheck, SqlCheck, UniqueCheck
from rscale.compiler.sql import UNFAITHFUL, check_warnings, compile_check, identifier, transpile


def run(sql: str, setup: str = "") -> list[tuple]:
    con = duckdb.connect()
    if setup:
        con.execute(setup)
    return con.execute(sql).fetchall()


@pytest.mark.parametrize(
    ("query", "construct", "line"),
    [
        ("SELECT id,\n  TO_VARCHAR(d, 'YYYY-MM') AS month FROM t", "to_char_format", 2),
        ("SELECT\n id,\n MOD(ABS(HASH(user_id)), 10) AS bucket FROM t", "hash", 3),
        ("SELECT v:field::string AS s FROM t", "variant_path_to_text", 1),
        ("SELECT f.key FROM t,\nLATERAL FLATTEN(input => t.o) f", "flatten_options", 1),
        ("SELECT f.value FROM t,\nLATERAL FLATTEN(input => t.a, outer => TRUE) f", "flatten_options", 2),
        ("SELECT MY_UDF(x) FROM t", "unknown_function", 1),
    ],
)
def test_unfaithful_constructs_are_warned_with_their_line(query: str, construct: str, line: int) -> None:
    transpiled = transpile(query, "snowflake", "duckdb")
    found = [f for f in transpiled.findings if f.construct == construct]
    assert found, transpiled.findings
    assert found[0].line == line
    assert f"query line {line}:" in transpiled.warnings[transpiled.findings.index(found[0])]
    assert construct in UNFAITHFUL


def test_to_char_with_a_format_is_one_warning_not_two() -> None:
    transpiled = transpile("SELECT TO_CHAR(d, 'YYYY') FROM t", "snowflake", "duckdb")
    assert len(transpiled.warnings) == 1 and "TO_VARCHAR/TO_CHAR" in transpiled.warnings[0]


def test_faithful_queries_carry_no_warning_and_run_on_duckdb() -> None:
    query = """
        SELECT user_id, IFF(n > 1, 'many', 'one') AS kind, DATEADD(day, 1, ts) AS next_day
        FROM t
        QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ts DESC) = 1;
    """
    transpiled = transpile(query, "snowflake", "duckdb")
    assert transpiled.warnings == ()
    rows = run(
        transpiled.sql + " ORDER BY 1",
        "CREATE TABLE t AS SELECT * FROM (VALUES (1, 2, TIMESTAMP '2026-01-01'), (1, 1, TIMESTAMP '2026-01-03'),"
        " (2, 3, TIMESTAMP '2026-01-02')) v(user_id, n, ts)",
    )
    assert [r[:2] for r in rows] == [(1, "one"), (2, "many")]
    assert str(rows[0][2]) == "2026-01-04 00:00:00"


def test_flatten_is_rewritten_to_a_lateral_unnest_with_snowflakes_columns() -> None:
    transpiled = transpile(
        "SELECT t.id, f.value, f.index FROM t, LATERAL FLATTEN(input => t.arr) f ORDER BY 1, 3", "snowflake", "duckdb"
    )
    assert transpiled.warnings == ()
    setup = "CREATE TABLE t AS SELECT * FROM (VALUES (1, [10, 20]), (2, []), (3, NULL), (4, [40])) v(id, arr)"
    # One row per element, 0-based INDEX; an empty or NULL array gives no row, as in Snowflake.
    assert run(transpiled.sql, setup) == [(1, 10, 0), (1, 20, 1), (4, 40, 0)]


def test_array_agg_drops_nulls_and_gives_an_empty_array_like_snowflake() -> None:
    transpiled = transpile(
        "SELECT g, ARRAY_AGG(IFF(x > 1, x, NULL)) WITHIN GROUP (ORDER BY x DESC) AS xs FROM t GROUP BY g ORDER BY g",
        "snowflake",
        "duckdb",
    )
    setup = "CREATE TABLE t AS SELECT * FROM (VALUES (1, 1), (1, 2), (1, 3), (2, 1), (2, NULL)) v(g, x)"
    assert run(transpiled.sql, setup) == [(1, [3, 2]), (2, [])]


def test_snowflake_desc_order_puts_nulls_first_on_duckdb_too() -> None:
    transpiled = transpile("SELECT x FROM t ORDER BY x DESC", "snowflake", "duckdb")
    assert run(transpiled.sql, "CREATE TABLE t AS SELECT * FROM (VALUES (1), (NULL), (2)) v(x)") == [(None,), (2,), (1,)]


def test_invalid_sql_names_the_line() -> None:
    with pytest.raises(ValueError, match=r"not valid snowflake SQL \(query line 2\)"):
        transpile("SELECT a,\n FROM WHERE (", "snowflake", "duckdb")


def test_same_dialect_is_left_as_written() -> None:
    assert transpile("SELECT 1;\n", "snowflake", "snowflake").sql == "SELECT 1"


def test_identifiers_mean_the_same_column_on_each_warehouse() -> None:
    assert identifier("session_id", "snowflake") == "session_id"  # Snowflake upper-cases it, as it did the column
    assert identifier("order", "snowflake") == '"ORDER"'  # reserved: quoted, in the case Snowflake stored
    assert identifier("Mixed Case", "snowflake") == '"Mixed Case"'
    assert identifier("session_id", "duckdb") == '"session_id"'


def test_checks_run_on_duckdb_over_a_query_with_its_own_ctes_and_a_trailing_comment() -> None:
    data_sql = transpile(
        "WITH s AS (SELECT * FROM t)\nSELECT id, device, price, \"order\" FROM s -- the rows", "snowflake", "duckdb"
    ).sql + "\n-- the rows"
    setup = (
        "CREATE TABLE t AS SELECT * FROM (VALUES (1, 'mobile', 2.0, 1), (1, 'tv', NULL, 2), (2, 'desktop', 9.5, 3))"
        " v(id, device, price, \"order\")"
    )
    con = duckdb.connect()
    con.execute(setup)

    def value(check: object) -> object:
        compiled = compile_check(check, data_sql, "duckdb")
        con.execute(str(compiled["sample_sql"])).fetchall()
        return con.execute(str(compiled["value_sql"])).fetchone()[0]

    assert value(NotNullCheck(type="not_null", columns=["price", "order"])) == 1
    assert value(UniqueCheck(type="unique", columns=["id"])) == 1
    assert value(AcceptedValuesCheck(type="accepted_values", column="device", values=["mobile", "desktop"])) == 1
    assert value(RangeCheck(type="range", column="price", max=5)) == 1
    sql_check = SqlCheck(type="sql", sql="SELECT * FROM data WHERE IFF(price > 5, TRUE, FALSE)")
    assert value(sql_check) == 1
    assert check_warnings(sql_check, "duckdb") == ()
    assert check_warnings(SqlCheck(type="sql", sql="SELECT HASH(id) FROM data"), "duckdb")


def test_show_prints_the_sql_a_plan_runs(project) -> None:
    from rscale.compiler.compilation import compile_spec
    from rscale.compiler.sql import show

    plan = compile_spec(project / "specs" / "recs.yaml", offline=True).plans[0]
    text = show(plan)
    assert "-- recs: data query on duckdb (transpiled from snowflake)" in text
    assert plan.data.sql in text
    for check in plan.checks:
        assert check.value_sql in text
    assert text.count(";") >= 1 + len(plan.checks)
