"""SQL for the selected warehouse: the spec's query transpiled with sqlglot, and data checks compiled to SQL.

Spec SQL is written in one dialect (Snowflake by default). Anything sqlglot cannot carry over faithfully
is reported as a warning with the spec line; it is never silently changed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Transpiled:
    sql: str
    warnings: tuple[str, ...] = ()


def transpile(sql: str, source: str, target: str) -> Transpiled:
    """Translate `sql` from the `source` dialect to the `target` dialect, collecting what cannot carry over."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

    if source == target:
        return Transpiled(sql.strip().rstrip(";"))
    warnings: list[str] = []
    try:
        (out,) = sqlglot.transpile(sql, read=source, write=target, unsupported_level=ErrorLevel.RAISE, pretty=True)
    except UnsupportedError as exc:
        warnings.append(f"sqlglot cannot translate this faithfully to {target}: {exc}")
        (out,) = sqlglot.transpile(sql, read=source, write=target, unsupported_level=ErrorLevel.IGNORE, pretty=True)
    except ParseError as exc:
        raise ValueError(f"the query is not valid {source} SQL: {exc.errors[0]['description'] if exc.errors else exc}") from None
    return Transpiled(out, tuple(warnings))


def quote(name: str) -> str:
    """Quote an identifier the same way in every dialect we target (double quotes)."""
    return '"' + name.replace('"', '""') + '"'


def compile_check(check: object, data_sql: str, target: str) -> dict[str, object]:
    """Compile one data check to SQL over `data_sql` (already in the target dialect).

    Returns the fields of a CheckPlan: `value_sql` yields one number (failing rows, or the row count,
    or the newest time for freshness); `sample_sql` yields up to five offending rows.
    """
    kind = check.type  # type: ignore[attr-defined]
    where: str | None = None
    value_sql: str
    if kind == "row_count":
        value_sql = "SELECT COUNT(*) FROM data"
    elif kind == "not_null":
        where = " OR ".join(f"{c} IS NULL" for c in check.columns)  # type: ignore[attr-defined]
    elif kind == "unique":
        cols = ", ".join(check.columns)  # type: ignore[attr-defined]
        dupes = f"SELECT {cols}, COUNT(*) AS duplicates FROM data GROUP BY {cols} HAVING COUNT(*) > 1"
        value_sql = f"SELECT COUNT(*) FROM ({dupes}) AS d"
        return _check_fields(check, data_sql, target, value_sql, f"{dupes} ORDER BY duplicates DESC LIMIT 5")
    elif kind == "accepted_values":
        values = ", ".join(_literal(v) for v in check.values)  # type: ignore[attr-defined]
        where = f"{check.column} IS NOT NULL AND {check.column} NOT IN ({values})"  # type: ignore[attr-defined]
    elif kind == "range":
        parts = []
        if check.min is not None:  # type: ignore[attr-defined]
            parts.append(f"{check.column} < {check.min}")  # type: ignore[attr-defined]
        if check.max is not None:  # type: ignore[attr-defined]
            parts.append(f"{check.column} > {check.max}")  # type: ignore[attr-defined]
        where = " OR ".join(parts)
    elif kind == "freshness":
        value_sql = f"SELECT MAX({check.column}) FROM data"  # type: ignore[attr-defined]
    elif kind == "sql":
        user = transpile(check.sql, "snowflake", target).sql  # type: ignore[attr-defined]
        return _check_fields(check, data_sql, target, f"SELECT COUNT(*) FROM ({user}) AS c", f"SELECT * FROM ({user}) AS c LIMIT 5")
    else:  # pragma: no cover - the schema admits no other kinds
        raise ValueError(f"unknown check type {kind}")
    if where is not None:
        value_sql = f"SELECT COUNT(*) FROM data WHERE {where}"
        return _check_fields(check, data_sql, target, value_sql, f"SELECT * FROM data WHERE {where} LIMIT 5")
    return _check_fields(check, data_sql, target, value_sql, None)


def _check_fields(check: object, data_sql: str, target: str, value_sql: str, sample_sql: str | None) -> dict[str, object]:
    def over_data(sql: str) -> str:
        body = transpile(sql, "snowflake", target).sql if target != "snowflake" else sql
        return f"WITH data AS (\n{data_sql}\n)\n{body}"

    return {
        "value_sql": over_data(value_sql),
        "sample_sql": over_data(sample_sql) if sample_sql else None,
    }


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
