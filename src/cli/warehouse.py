"""`rs tables` and `rs columns`: what the stack's warehouse holds, before writing a spec against it.

`rs columns TABLE|QUERY` profiles each column in the warehouse (type, null share, distinct values, range or
length, the values of low-cardinality columns) and says which feature type `inputs: all` would infer.
"""

from __future__ import annotations

import json
import re
from typing import Any

import typer

from rscale.cli.app import app, console, friendly_errors

STACK = typer.Option(None, "--stack", "-s", help="Stack whose warehouse to read. Default: the active stack.")
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table (for scripts).")
SIMPLE_TABLE = re.compile(r"^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*){0,2}$")


def open_warehouse(stack: str | None) -> Any:
    """The stack's warehouse, opened read-only (a running endpoint or another `rs` may read alongside)."""
    from rscale.compiler.stack import load_stack
    from rscale.stacks import active_stack_name
    from rscale.warehouses import connect

    return connect(load_stack(stack or active_stack_name()).warehouse, read_only=True)


def source_sql(source: str, warehouse_kind: str, dialect: str) -> str:
    """`events` -> SELECT * FROM events; a query is transpiled from `dialect` to the warehouse's own SQL."""
    from rscale.compiler.sql import transpile
    from rscale.errors import ConfigurationError

    if SIMPLE_TABLE.match(source.strip()):
        return f"SELECT * FROM {source.strip()}"
    try:
        return transpile(source, dialect, warehouse_kind).sql
    except Exception as exc:  # sqlglot's parse errors, for people
        raise ConfigurationError(
            f"cannot read the query as {dialect} SQL: {str(exc).splitlines()[0]}",
            fix="give a table name, or a SELECT in --dialect (snowflake by default)",
        ) from None


def profile_source(warehouse: Any, source: str, dialect: str, *, values: bool = True) -> tuple[str, list[Any]]:
    """Profile a table or query in the warehouse; a missing table or bad query is a clear error."""
    from rscale.errors import RscaleError
    from rscale.warehouses.profile import profile_query

    sql = source_sql(source, warehouse.kind, dialect)
    try:
        return sql, profile_query(warehouse, sql, values=values)
    except RscaleError:
        raise
    except Exception as exc:  # the warehouse's own error: no such table, a bad column
        raise RscaleError(
            f"the {warehouse.kind} warehouse cannot read `{source}`: {str(exc).strip().splitlines()[0]}",
            fix="`rs tables` lists what the warehouse holds",
        ) from None


@app.command("tables")
@friendly_errors
def tables_command(stack: str = STACK, as_json: bool = AS_JSON) -> None:
    """List the tables and views in the stack's warehouse, with their row and column counts."""
    from rich.table import Table
    from rich.text import Text

    with open_warehouse(stack) as warehouse:
        found = warehouse.tables()
        kind = warehouse.kind
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table(title=f"{kind} warehouse: {len(found)} tables and views", title_justify="left")
    for column, justify in (("name", "left"), ("kind", "left"), ("rows", "right"), ("columns", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for item in found:
        rows = "-" if item["rows"] is None else f"{item['rows']:,}"
        table.add_row(Text(item["name"]), item["kind"], rows, str(item["columns"]))
    console.print(table)
    if found:
        console.print(f"next: rs columns {found[0]['name']}   (then: rs init NAME --table {found[0]['name']} --target COLUMN)")


@app.command("columns")
@friendly_errors
def columns_command(
    source: str = typer.Argument(..., help="A table name, or a SELECT query (quoted)."),
    stack: str = STACK,
    dialect: str = typer.Option("snowflake", "--dialect", help="The SQL dialect of a query (snowflake or duckdb)."),
    as_json: bool = AS_JSON,
) -> None:
    """Profile each column of a table or query: type, null share, distinct count, range, and the inferred feature type."""
    from rich.table import Table
    from rich.text import Text

    from rscale.compiler.inference import infer_type
    from rscale.warehouses.profile import PROFILE_ROWS

    with open_warehouse(stack) as warehouse:
        _sql, profiles = profile_source(warehouse, source, dialect)
    if as_json:
        typer.echo(json.dumps([{**p.as_json(), "feature_type": infer_type(p)[0]} for p in profiles], indent=2))
        return
    rows = profiles[0].rows if profiles else 0
    table = Table(
        title=f"{source}: {len(profiles)} columns, {rows:,} rows profiled"
        + (f" (the first {PROFILE_ROWS:,})" if rows >= PROFILE_ROWS else ""),
        title_justify="left",
    )
    for column, justify in (("column", "left"), ("type", "left"), ("nulls", "right"), ("distinct", "right"),
                            ("range / length / values", "left"), ("feature type", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for p in profiles:
        feature, _why = infer_type(p)
        table.add_row(
            Text(p.name), Text(p.type), f"{p.null_share:.1%}", "-" if p.distinct is None else f"{p.distinct:,}",
            Text(_shape(p)), feature or "-",
        )
    console.print(table)


def _shape(p: Any) -> str:
    if p.values is not None and len(p.values) <= 10:
        return "values: " + ", ".join(map(str, p.values))
    if p.avg_length is not None:
        return f"average length {p.avg_length:.1f}"
    if p.min is not None:
        return f"{p.min} .. {p.max}"
    return ""
