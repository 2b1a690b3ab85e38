"""A cheap profile of a query's columns, computed in the warehouse: null share, distinct count, average string
length, min and max, and the values of low-cardinality columns.

One aggregate query over at most `PROFILE_ROWS` rows of the query's result, so profiling a big table stays
cheap; it runs the same on DuckDB and Snowflake (plain COUNT, COUNT(DISTINCT), AVG(LENGTH), MIN, MAX).
Used by type inference at compile time, `rs columns` and `rs init`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

PROFILE_ROWS = 100_000  # rows of the query's result a profile reads (the first ones the warehouse returns)
LOW_CARDINALITY = 10  # at most this many distinct values: the values are listed (accepted-values checks)

STRING_TYPES = {"VARCHAR", "TEXT", "STRING", "CHAR", "CHARACTER", "BPCHAR", "NVARCHAR", "NCHAR", "ENUM", "UUID"}
ORDERED_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "INT1", "INT2", "INT4", "INT8", "BYTEINT", "FLOAT", "FLOAT4", "FLOAT8", "REAL", "DOUBLE",
                 "DOUBLE PRECISION", "DECIMAL", "NUMERIC", "NUMBER", "FIXED"}
TIME_TYPES = {"DATE", "TIMESTAMP", "TIMESTAMP_NTZ", "TIMESTAMP_LTZ", "TIMESTAMP_TZ", "TIMESTAMP WITH TIME ZONE",
              "TIMESTAMPTZ", "DATETIME"}
SCALAR_TYPES = STRING_TYPES | ORDERED_TYPES | TIME_TYPES | {"BOOLEAN", "BOOL"}


@dataclass(frozen=True)
class ColumnProfile:
    """What the warehouse says about one column of a query's result (over the profiled rows)."""

    name: str
    type: str  # the warehouse's type name, e.g. DOUBLE, VARCHAR, INTEGER[]
    rows: int
    nulls: int
    distinct: int | None = None  # None for lists, structs and other types COUNT(DISTINCT) does not take
    avg_length: float | None = None  # strings only
    min: Any = None  # numbers and times (times as ISO text)
    max: Any = None
    values: list[Any] | None = field(default=None)  # every value, when there are at most LOW_CARDINALITY

    @property
    def null_share(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["null_share"] = round(self.null_share, 6)
        return {k: _json_value(v) for k, v in out.items()}


def base_type(warehouse_type: str) -> str:
    """`DECIMAL(18,3)` -> DECIMAL, `INTEGER[]` -> LIST; the family names above."""
    text = warehouse_type.strip().strip('"').upper()
    if text.endswith("]") or text.startswith(("LIST", "ARRAY")):
        return "LIST"
    return re.sub(r"\(.*\)", "", text).strip()


SIMPLE = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quote(name: str) -> str:
    """A column name quoted so it reads the same on DuckDB (case-insensitive) and Snowflake, where rscale
    reports a plain name in lower case that is stored in upper case (`n_views` is stored as N_VIEWS)."""
    stored = name.upper() if SIMPLE.match(name) else name
    return '"' + stored.replace('"', '""') + '"'


def profile_query(warehouse: Any, sql: str, *, rows: int = PROFILE_ROWS, values: bool = True) -> list[ColumnProfile]:
    """Profile every column of `sql` (already in the warehouse's dialect) with one aggregate query, plus one
    small DISTINCT query per low-cardinality column when `values` is set."""
    schema = [(str(n), str(t)) for n, t in warehouse.schema(sql)]
    sample = f"(SELECT * FROM ({sql}) AS rs_query LIMIT {int(rows)}) AS rs_sample"
    parts = ["COUNT(*) AS rs_rows"]
    for index, (name, kind) in enumerate(schema):
        base, column = base_type(kind), quote(name)
        parts.append(f"COUNT({column}) AS c{index}_n")
        if base in SCALAR_TYPES:
            parts.append(f"COUNT(DISTINCT {column}) AS c{index}_d")
        if base in STRING_TYPES:
            parts.append(f"AVG(LENGTH({column})) AS c{index}_l")
        if base in ORDERED_TYPES or base in TIME_TYPES:
            parts.append(f"MIN({column}) AS c{index}_lo")
            parts.append(f"MAX({column}) AS c{index}_hi")
    row = {k.lower(): v for k, v in warehouse.query_arrow(f"SELECT {', '.join(parts)} FROM {sample}").to_pylist()[0].items()}
    total = int(row["rs_rows"] or 0)
    profiles = []
    for index, (name, kind) in enumerate(schema):
        distinct = row.get(f"c{index}_d")
        found = None
        if values and distinct is not None and 0 < int(distinct) <= LOW_CARDINALITY:
            column = quote(name)
            table = warehouse.query_arrow(
                f"SELECT DISTINCT {column} AS v FROM {sample} WHERE {column} IS NOT NULL ORDER BY 1"
            )
            found = [_json_value(v) for v in table.column(0).to_pylist()]
        length = row.get(f"c{index}_l")
        profiles.append(
            ColumnProfile(
                name=name,
                type=kind,
                rows=total,
                nulls=total - int(row[f"c{index}_n"] or 0),
                distinct=None if distinct is None else int(distinct),
                avg_length=None if length is None else float(length),
                min=_json_value(row.get(f"c{index}_lo")),
                max=_json_value(row.get(f"c{index}_hi")),
                values=found,
            )
        )
    return profiles


def _json_value(value: Any) -> Any:
    """Decimals and other warehouse scalars as plain JSON numbers and strings."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
