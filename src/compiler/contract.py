"""The data contract, checked at compile time: the query's result schema, asked of the warehouse without
running the query, must have every column the spec names, with a type the model accepts.

DuckDB answers with DESCRIBE, Snowflake with a LIMIT 0 describe, both behind
`rscale.warehouses.connect(config, read_only=True).schema(sql)`. An error points at the spec line that
names the column and lists the columns the query returns. `--offline` skips all of this.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rscale.compiler.errors import Problem, did_you_mean
from rscale.compiler.load import Document
from rscale.compiler.plan import Plan

if TYPE_CHECKING:  # the compiler reads the stack's types; the profile's module is imported when it is asked
    from rscale.compiler.stack import StackSpec
    from rscale.warehouses.profile import ColumnProfile

Path_ = tuple[str | int, ...]
T = TypeVar("T")
Schema = list[tuple[str, str]]  # (column, warehouse type) in query order

# Type families, on the warehouse's type name with parameters and modifiers stripped.
INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
           "UBIGINT", "UHUGEINT", "INT1", "INT2", "INT4", "INT8", "BYTEINT", "LONG", "SHORT"}
NUMERIC = INTEGER | {"FLOAT", "FLOAT4", "FLOAT8", "REAL", "DOUBLE", "DOUBLE PRECISION", "DECIMAL", "NUMERIC",
                     "NUMBER", "FIXED"}
STRING = {"VARCHAR", "TEXT", "STRING", "CHAR", "CHARACTER", "BPCHAR", "NVARCHAR", "NCHAR", "ENUM", "UUID"}
BOOLEAN = {"BOOLEAN", "BOOL", "LOGICAL"}
TEMPORAL = {"DATE", "DATETIME", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S",
            "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP_NTZ", "TIMESTAMP_LTZ", "TIMESTAMP_TZ", "TIME"}
UNTYPED = {"VARIANT", "NULL", "UNKNOWN", "ANY"}  # the warehouse cannot tell before running: accept

ACCEPTS: dict[str, tuple[set[str], str]] = {
    "numeric": (NUMERIC | BOOLEAN, "a numeric column (INTEGER, BIGINT, DOUBLE, DECIMAL, NUMBER, ...)"),
    "binary": (BOOLEAN | INTEGER | STRING | {"NUMBER", "FIXED", "DECIMAL"}, "a BOOLEAN, integer or two-valued string column"),
    "categorical": (STRING | INTEGER | BOOLEAN | {"NUMBER", "FIXED"}, "a string or integer column"),
    "text": (STRING, "a string column (VARCHAR, TEXT)"),
    "sequence": ({"LIST", "ARRAY"}, "a LIST/ARRAY column (e.g. ARRAY_AGG(item_id))"),
    "time": (TEMPORAL | NUMERIC, "a TIMESTAMP, DATE or numeric column"),  # numeric: epoch seconds
    "scalar": (NUMERIC | STRING | BOOLEAN | TEMPORAL, "a scalar column (not a list or struct)"),
}


def family(warehouse_type: str) -> str:
    """`INTEGER[]` -> LIST, `DECIMAL(18,3)` -> DECIMAL, `TIMESTAMP WITH TIME ZONE` stays, `"NULL"` -> NULL."""
    text = warehouse_type.strip().strip('"').upper()
    if text.endswith("]") or text.startswith(("LIST", "ARRAY")):
        return "LIST" if not text.startswith("ARRAY") else "ARRAY"
    for compound in ("STRUCT", "MAP", "OBJECT", "UNION"):
        if text.startswith(compound):
            return compound
    return re.sub(r"\(.*\)", "", text).strip()


def accepts(use: str, warehouse_type: str) -> bool:
    kind = family(warehouse_type)
    return kind in UNTYPED or kind in ACCEPTS[use][0]


def check_contract(plan: Plan, doc: Document, schema: Schema | None = None) -> list[Problem]:
    """Every column the plan reads, checked against the query's result schema (asked of the warehouse when
    `schema` is not given). Returns problems with the spec line of each column; never runs the query."""
    if schema is None:
        schema, problems = query_schema(plan, doc)
        if problems:
            return problems
    assert schema is not None
    columns = {name: kind for name, kind in schema}
    folded = {name.lower(): name for name in columns}
    listing = ", ".join(f"{name} ({kind})" for name, kind in schema)
    problems = []
    for path, column, use, role in _columns_used(plan):
        found = column if column in columns else folded.get(column.lower())
        where = doc.locate(path)
        if found is None:
            hint = did_you_mean(column, list(columns))
            problems.append(
                Problem(
                    f"column `{column}` ({role}) is not in the query's result",
                    path=path,
                    location=where,
                    fix=(hint + " " if hint else "") + f"the query returns: {listing}",
                )
            )
        elif not accepts(use, columns[found]):
            wanted = ACCEPTS[use][1]
            problems.append(
                Problem(
                    f"column `{column}` ({role}) is {columns[found]} in the query's result; it needs {wanted}",
                    path=path,
                    location=where,
                    fix=_type_fix(use, columns[found]),
                )
            )
    return problems


def query_schema(plan: Plan, doc: Document) -> tuple[Schema | None, list[Problem]]:
    """Ask the plan's warehouse for the query's result columns without running it."""
    found, problems = ask_warehouse(plan.stack, plan.data.sql, doc, lambda warehouse: warehouse.schema(plan.data.sql))
    return (None if found is None else [(str(name), str(kind)) for name, kind in found]), problems


def query_profile(stack: StackSpec, sql: str, doc: Document) -> tuple[list[ColumnProfile] | None, list[Problem]]:
    """A cheap profile of each result column (type, nulls, distinct count, length, min/max) for inference."""
    from rscale.warehouses.profile import profile_query

    return ask_warehouse(stack, sql, doc, lambda warehouse: profile_query(warehouse, sql, values=False))


def ask_warehouse(
    stack: StackSpec, sql: str, doc: Document, question: Callable[[Any], T]
) -> tuple[T | None, list[Problem]]:
    """Open the stack's warehouse read-only and ask it one question about the query; a failure is a Problem
    at the spec's `data` key, never a traceback."""
    config = stack.warehouse
    here = doc.locate(("data", "query")) if doc.has(("data", "query")) else doc.locate(("data",))
    if config.kind == "duckdb":
        from rscale.paths import project_root

        file = Path(config.path)
        file = file if file.is_absolute() else project_root() / file
        if not file.exists():
            return None, [
                Problem(
                    f"the warehouse {config.path} does not exist yet, so the data contract cannot be checked",
                    path=("data",),
                    location=doc.locate(("data",)),
                    fix="run `rs seed` to create the demo warehouse, or pass --offline to skip the data contract",
                )
            ]
    try:
        warehouse = _connect(config)
    except Exception as exc:  # any driver's connection failure: report it, never a traceback
        return None, [
            Problem(
                f"cannot reach the {config.kind} warehouse to check the data contract: {_first_line(exc, doc)}",
                path=("data",),
                location=doc.locate(("data",)),
                fix=f"check stack `{stack.name}`'s warehouse settings, or pass --offline to skip the data contract",
            )
        ]
    try:
        return question(warehouse), []
    except Exception as exc:  # the warehouse rejected the query: a missing table or column, a type error
        return None, [
            Problem(
                f"the {config.kind} warehouse cannot describe the query: {_first_line(exc, doc)}",
                path=("data", "query") if doc.has(("data", "query")) else ("data", "query_file"),
                location=here,
                fix="check the table and column names in the query (`rs seed` creates the demo tables), "
                "or pass --offline to skip the data contract",
            )
        ]
    finally:
        close = getattr(warehouse, "close", None)
        if callable(close):
            close()


def _connect(config: Any) -> Any:
    from rscale.warehouses import connect

    return connect(config, read_only=True)


def _first_line(exc: Exception, doc: Document) -> str:
    text = str(exc).strip().splitlines()
    return doc.mask(text[0]) if text else type(exc).__name__


def _type_fix(use: str, seen: str) -> str:
    if use == "sequence":
        return "build the list in the query (e.g. ARRAY_AGG(item_id) ... GROUP BY session_id), or give the feature another type"
    if use == "numeric" and family(seen) in STRING:
        return "CAST it to a number in the query, or make the feature `categorical`"
    if use == "text":
        return "CAST it to VARCHAR in the query, or give the feature the type of its column"
    if use == "time":
        return "CAST it to TIMESTAMP in the query, or name another column"
    return "CAST the column in the query, or change the feature's type"


def _columns_used(plan: Plan) -> Iterator[tuple[Path_, str, str, str]]:
    """(key path, column, use, role) for each column the plan reads."""
    features = plan.features
    for index, feature in enumerate(features.inputs):
        yield ("features", "inputs", index, "name"), feature.name, feature.type, f"a {feature.type} input"
    yield ("features", "target", "name"), features.target.name, features.target.type, f"the {features.target.type} target"
    if features.id:
        yield ("features", "id"), features.id, "scalar", "the id"
    if plan.data.time_column:
        yield ("data", "time_column"), plan.data.time_column, "time", "the time column"
    if plan.split.column and plan.split.column != plan.data.time_column:
        use = "time" if plan.split.by == "time" else "scalar"
        yield ("split", "column"), plan.split.column, use, f"the {plan.split.by} split's column"
    for index, check in enumerate(plan.checks):
        spec = check.rule.get("spec", {})
        if "columns" in spec:
            for position, column in enumerate(spec["columns"]):
                yield ("checks", index, "columns", position), column, "scalar", f"checked by {check.name}"
        if "column" in spec:
            # range compares numbers or times; freshness compares times (or epoch numbers)
            use = "time" if check.type in ("range", "freshness") else "scalar"
            yield ("checks", index, "column"), spec["column"], use, f"checked by {check.name}"
