"""SQL for the selected warehouse: the spec's query transpiled with sqlglot, and data checks compiled to SQL.

Spec SQL is written in one dialect (Snowflake by default). sqlglot carries most of it over; what it does
not carry over faithfully is either rewritten here into SQL with the same meaning (`REWRITES`) or reported
as a warning with its line in the query (`UNFAITHFUL`). Nothing is silently run with other semantics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlglot import exp

    from rscale.compiler.plan import Plan


@dataclass(frozen=True)
class Finding:
    """One construct that cannot run with the same meaning on the target, and where the query has it."""

    construct: str  # the registry name, e.g. "to_char_format"
    message: str
    line: int | None = None  # 1-based line within the query text

    def text(self) -> str:
        return f"query line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Transpiled:
    sql: str
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default=(), compare=False)


# -- the registry of constructs sqlglot does not carry over faithfully -------------------------------------

Detector = Callable[["exp.Expr"], Iterator[tuple["exp.Expr", str]]]


@dataclass(frozen=True)
class Construct:
    """A construct of `source` SQL whose meaning differs on `targets`; `detect` finds it in the parsed query."""

    name: str
    source: str
    targets: tuple[str, ...]
    detect: Detector
    explains: tuple[str, ...] = ()  # sqlglot expression names whose "unsupported" notes this one replaces


UNFAITHFUL: dict[str, Construct] = {}


def unfaithful(name: str, *, source: str, targets: tuple[str, ...], explains: tuple[str, ...] = ()):
    """Register a detector of a construct that `source` SQL means differently on `targets`."""

    def decorate(detect: Detector) -> Detector:
        if name in UNFAITHFUL:
            raise ValueError(f"unfaithful construct {name!r} is registered twice")
        UNFAITHFUL[name] = Construct(name, source, targets, detect, explains)
        return detect

    return decorate


@unfaithful("to_char_format", source="snowflake", targets=("duckdb",), explains=("ToChar",))
def _to_char_with_format(tree: exp.Expr) -> Iterator[tuple[exp.Expr, str]]:
    from sqlglot import exp

    for node in tree.find_all(exp.ToChar):
        if node.args.get("format") is not None:
            yield node, (
                f"TO_VARCHAR/TO_CHAR with a format ({node.args['format'].sql('snowflake')}) has no faithful DuckDB "
                "form; sqlglot would drop the format. Format in Python after loading, or use "
                "data.dialect: duckdb with strftime/format for this query"
            )


@unfaithful("hash", source="snowflake", targets=("duckdb",))
def _hash(tree: exp.Expr) -> Iterator[tuple[exp.Expr, str]]:
    from sqlglot import exp

    for node in tree.find_all(exp.Anonymous):
        if str(node.this).upper() == "HASH":
            yield node, (
                "HASH() gives different values in Snowflake and DuckDB, so anything bucketed by it (a split, a "
                "sample) differs between local and production. Use MD5() or a stored bucket column"
            )


@unfaithful("variant_path_to_text", source="snowflake", targets=("duckdb",))
def _variant_path_as_text(tree: exp.Expr) -> Iterator[tuple[exp.Expr, str]]:
    from sqlglot import exp

    for node in tree.find_all(exp.Cast):
        if isinstance(node.this, exp.JSONExtract) and node.to.is_type(*exp.DataType.TEXT_TYPES):
            yield node, (
                f"{node.this.sql('snowflake')} cast to text: a VARIANT path gives the bare string in Snowflake, but the "
                "JSON text (with its quotes) in DuckDB. Use JSON_EXTRACT_PATH_TEXT(column, 'path') instead"
            )


@unfaithful("flatten_options", source="snowflake", targets=("duckdb",))
def _flatten_options(tree: exp.Expr) -> Iterator[tuple[exp.Expr, str]]:
    from sqlglot import exp

    for lateral in tree.find_all(exp.Lateral):
        explode = lateral.this
        if not isinstance(explode, exp.Explode):
            continue
        options = [k.this.name.upper() for k in explode.expressions if isinstance(k, exp.Kwarg)]
        if options:
            yield explode, (
                f"FLATTEN with {', '.join(options)} has no DuckDB form here; only FLATTEN(input => array) "
                "is carried over (its VALUE, INDEX and THIS columns)"
            )
        alias = lateral.alias_or_name.upper() if lateral.args.get("alias") else "_FLATTENED"
        for column in tree.find_all(exp.Column):
            if column.name.upper() in ("SEQ", "KEY", "PATH") and (column.table or "").upper() in (alias, ""):
                if column.table or alias == "_FLATTENED":
                    yield column, (
                        f"FLATTEN's {column.name.upper()} column is not carried over to DuckDB; "
                        "use VALUE, INDEX or THIS"
                    )


@unfaithful("unknown_function", source="snowflake", targets=("duckdb",))
def _unknown_functions(tree: exp.Expr) -> Iterator[tuple[exp.Expr, str]]:
    from sqlglot import exp

    for node in tree.find_all(exp.Anonymous):
        name = str(node.this).upper()
        if name != "HASH":
            yield node, (
                f"sqlglot does not know {name}(); it is passed to DuckDB unchanged, where it may not exist or "
                "may mean something else"
            )


# -- rewrites that make a construct faithful ---------------------------------------------------------------

Rewrite = Callable[["exp.Expr"], "exp.Expr"]
# (source, target) -> rewrites of the source tree before sqlglot generates the target SQL
REWRITES: dict[tuple[str, str], list[Rewrite]] = {}
# (source, target) -> rewrites of the generated target tree (parsed back in the target dialect)
TARGET_REWRITES: dict[tuple[str, str], list[Rewrite]] = {}


def rewrite(source: str, target: str, *, after_generation: bool = False) -> Callable[[Rewrite], Rewrite]:
    def decorate(function: Rewrite) -> Rewrite:
        table = TARGET_REWRITES if after_generation else REWRITES
        table.setdefault((source, target), []).append(function)
        return function

    return decorate


@rewrite("snowflake", "duckdb")
def _flatten_as_lateral_unnest(tree: exp.Expr) -> exp.Expr:
    """`LATERAL FLATTEN(input => a) f` -> `LATERAL (SELECT UNNEST(a) AS value, ...) AS f`.

    sqlglot 30.22 emits `t,  CROSS JOIN UNNEST(...)` for it, which DuckDB cannot parse. Both forms give one
    row per element, none for an empty or NULL array; INDEX is 0-based as in Snowflake.
    """
    import sqlglot
    from sqlglot import exp

    for lateral in list(tree.find_all(exp.Lateral)):
        explode = lateral.this
        if not isinstance(explode, exp.Explode) or explode.expressions:
            continue  # FLATTEN options are reported by `flatten_options`, not guessed at
        source = explode.this.expression if isinstance(explode.this, exp.Kwarg) else explode.this
        array = source.sql("duckdb")
        alias = lateral.alias_or_name if lateral.args.get("alias") else "_flattened"
        replacement = sqlglot.parse_one(
            f"SELECT * FROM x, LATERAL (SELECT UNNEST({array}) AS value, "
            f"UNNEST(RANGE(LEN({array}))) AS index, {array} AS this) AS {alias}",
            read="duckdb",
        ).args["joins"][0].this
        lateral.replace(replacement)
    return tree


@rewrite("snowflake", "duckdb", after_generation=True)
def _array_agg_of_no_rows_is_empty(tree: exp.Expr) -> exp.Expr:
    """Snowflake's ARRAY_AGG gives [] when every value is NULL; DuckDB's filtered ARRAY_AGG gives NULL."""
    from sqlglot import exp

    for agg in list(tree.find_all(exp.ArrayAgg)):
        outer: exp.Expr = agg
        while isinstance(outer.parent, (exp.Filter, exp.Window, exp.WithinGroup)):
            outer = outer.parent
        if isinstance(outer.parent, exp.Coalesce):
            continue
        outer.replace(exp.Coalesce(this=outer.copy(), expressions=[exp.Array(expressions=[])]))
    return tree


# -- transpiling -------------------------------------------------------------------------------------------


_TRANSPILED: dict[tuple[str, str, str], Transpiled] = {}  # this process's results, by (text, source, target)


def transpile(sql: str, source: str, target: str) -> Transpiled:
    """Translate `sql` from the `source` dialect to the `target` dialect, collecting what cannot carry over.

    Raises ValueError when the query does not parse as `source` SQL. A result is kept for the process and in
    `.rs/cache/sql/` (see `_cache_file`), so compiling the same query again (each `rs validate`) neither
    imports nor runs sqlglot; importing it is a good part of a validate's start-up.
    """
    text = sql.strip().rstrip(";").rstrip()
    if source == target:
        return Transpiled(text)
    key = (text, source, target)
    if key not in _TRANSPILED:
        path = _cache_file(text, source, target)
        found = _read_cached(path) if path is not None else None
        if found is None:
            found = _transpile(text, source, target)
            if path is not None:
                _write_cached(path, found)
        _TRANSPILED[key] = found
    return _TRANSPILED[key]


def is_sqlglot_error(exc: BaseException) -> bool:
    """Whether `exc` is one of sqlglot's errors, looked up only when sqlglot is loaded: when it is not (the
    transpile came from the cache), nothing could have raised one."""
    import sys

    errors = sys.modules.get("sqlglot.errors")
    return errors is not None and isinstance(exc, errors.SqlglotError)


def _cache_file(text: str, source: str, target: str) -> Path | None:
    """Where the result for this query is kept: named by a hash of everything the result depends on (the
    query, both dialects, sqlglot's version, this module's source and the registered constructs and
    rewrites), so a change to any of them misses the cache instead of reading a stale result. None when
    sqlglot's version cannot be read (then nothing is cached on disk)."""
    import hashlib
    import importlib.metadata
    import json

    from rscale.paths import project_root

    try:
        version = importlib.metadata.version("sqlglot")
        module = Path(__file__).read_bytes()
    except (importlib.metadata.PackageNotFoundError, OSError):
        return None
    registry = [sorted(UNFAITHFUL)] + [
        sorted((s, t, [f"{f.__module__}.{f.__qualname__}" for f in r]) for (s, t), r in rewrites.items())
        for rewrites in (REWRITES, TARGET_REWRITES)
    ]
    digest = hashlib.sha256(json.dumps([text, source, target, version, registry]).encode())
    digest.update(module)
    return project_root() / ".rs" / "cache" / "sql" / f"{digest.hexdigest()[:32]}.json"


def _read_cached(path: Path) -> Transpiled | None:
    """The kept result, or None when there is none (or it cannot be read: it is then computed again)."""
    import json

    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        return Transpiled(kept["sql"], tuple(kept["warnings"]), tuple(Finding(**f) for f in kept["findings"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cached(path: Path, result: Transpiled) -> None:
    """Keep a result; a folder that cannot be written to only means the next compile transpiles again."""
    import json
    import os
    from dataclasses import asdict

    kept = {"sql": result.sql, "warnings": list(result.warnings), "findings": [asdict(f) for f in result.findings]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(kept), encoding="utf-8")
        partial.replace(path)  # atomic: a concurrent compile reads the whole result or none
    except OSError:
        pass


def _transpile(text: str, source: str, target: str) -> Transpiled:
    """`transpile` without the cache: parse with sqlglot, detect, rewrite and generate."""
    import sqlglot
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import ErrorLevel, ParseError

    try:
        statements = [s for s in sqlglot.parse(text, read=source) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (query line {first['line']})" if first.get("line") else ""
        raise ValueError(f"the query is not valid {source} SQL{where}: {first.get('description', exc)}") from None
    if len(statements) != 1:
        raise ValueError(f"the query must be one SQL statement; found {len(statements)}")
    tree = statements[0]

    findings: list[Finding] = []
    explained: set[str] = set()
    for construct in UNFAITHFUL.values():
        if construct.source != source or target not in construct.targets:
            continue
        for node, message in construct.detect(tree):
            finding = Finding(construct.name, message, _line(node))
            if finding not in findings:
                findings.append(finding)
            explained.update(construct.explains)
    for change in REWRITES.get((source, target), []):
        tree = change(tree)

    generator = Dialect.get_or_raise(target).generator(unsupported_level=ErrorLevel.IGNORE, pretty=True)
    out = generator.generate(tree, copy=True)
    for note in generator.unsupported_messages:
        if not any(f"'{name}'" in note for name in explained):
            findings.append(Finding("sqlglot_unsupported", f"sqlglot cannot translate this faithfully to {target}: {note}"))
    after = TARGET_REWRITES.get((source, target), [])
    if after:
        try:
            generated = sqlglot.parse_one(out, read=target)
        except ParseError:  # sqlglot wrote SQL the target cannot parse; a finding above already says why
            generated = None
        if generated is not None:
            for change in after:
                generated = change(generated)
            out = generated.sql(target, pretty=True)
    return Transpiled(out, tuple(f.text() for f in findings), tuple(findings))


def _line(node: exp.Expr) -> int | None:
    """The query line a node came from: sqlglot keeps token positions on functions and identifiers."""
    for candidate in node.walk():
        line = candidate.meta.get("line") if candidate.meta else None
        if line:
            return int(line)
    return None


# -- identifiers -------------------------------------------------------------------------------------------

SIMPLE_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(name: str) -> str:
    """Quote an identifier with double quotes (both DuckDB and Snowflake)."""
    return '"' + name.replace('"', '""') + '"'


def identifier(name: str, target: str) -> str:
    """A column name from the spec, written so it means the same column on `target`.

    DuckDB matches identifiers case-insensitively even when quoted, so it is always quoted. Snowflake
    upper-cases unquoted names: a plain name (`session_id`) stays unquoted so it finds SESSION_ID, a
    reserved word is quoted in upper case (what Snowflake stored), and anything else is quoted as written.
    """
    if target != "snowflake":
        return quote(name)
    if SIMPLE_IDENTIFIER.match(name):
        return quote(name.upper()) if _reserved_in_snowflake(name) else name
    return quote(name)


# Snowflake's reserved keywords (docs.snowflake.com, "Reserved & limited keywords"): a column so named was
# created quoted, or upper-cased by Snowflake; either way it must be quoted to be read.
SNOWFLAKE_RESERVED = frozenset(
    """ACCOUNT ALL ALTER AND ANY AS BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONNECTION CONSTRAINT CREATE CROSS
    CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DELETE DISTINCT DROP ELSE EXISTS
    FALSE FOLLOWING FOR FROM FULL GRANT GROUP GSCLUSTER HAVING ILIKE IN INCREMENT INNER INSERT INTERSECT INTO IS
    ISSUE JOIN LATERAL LEFT LIKE LOCALTIME LOCALTIMESTAMP MINUS NATURAL NOT NULL OF ON OR ORDER ORGANIZATION
    QUALIFY REGEXP REVOKE RIGHT RLIKE ROW ROWS SAMPLE SCHEMA SELECT SET SOME START TABLE TABLESAMPLE THEN TO
    TRIGGER TRUE TRY_CAST UNION UNIQUE UPDATE USING VALUES VIEW WHEN WHENEVER WHERE WITH""".split()
)


def _reserved_in_snowflake(name: str) -> bool:
    return name.upper() in SNOWFLAKE_RESERVED


# -- data checks -------------------------------------------------------------------------------------------


def compile_check(check: object, data_sql: str, target: str, *, dialect: str = "snowflake") -> dict[str, object]:
    """Compile one data check to SQL over `data_sql` (already in the target dialect).

    Returns the fields of a CheckPlan: `value_sql` yields one number (failing rows, or the row count,
    or the newest time for freshness); `sample_sql` yields up to five offending rows. Generated SQL is
    written directly in the target dialect; a `sql` check's own query is transpiled from `dialect`.
    """
    c: Any = check
    kind = c.type

    def col(name: str) -> str:
        return identifier(name, target)

    where: str | None = None
    if kind == "row_count":
        return _over_data(data_sql, "SELECT COUNT(*) FROM data", None)
    if kind == "not_null":
        where = " OR ".join(f"{col(name)} IS NULL" for name in c.columns)
    elif kind == "unique":
        cols = ", ".join(col(name) for name in c.columns)
        dupes = f"SELECT {cols}, COUNT(*) AS duplicates FROM data GROUP BY {cols} HAVING COUNT(*) > 1"
        return _over_data(
            data_sql, f"SELECT COUNT(*) FROM ({dupes}) AS d", f"{dupes} ORDER BY duplicates DESC LIMIT 5"
        )
    elif kind == "accepted_values":
        values = ", ".join(_literal(v) for v in c.values)
        where = f"{col(c.column)} IS NOT NULL AND {col(c.column)} NOT IN ({values})"
    elif kind == "range":
        parts = []
        if c.min is not None:
            parts.append(f"{col(c.column)} < {_literal(c.min)}")
        if c.max is not None:
            parts.append(f"{col(c.column)} > {_literal(c.max)}")
        where = " OR ".join(parts)
    elif kind == "freshness":
        return _over_data(data_sql, f"SELECT MAX({col(c.column)}) FROM data", None)
    elif kind == "sql":
        user = transpile(c.sql, dialect, target).sql
        return _over_data(data_sql, f"SELECT COUNT(*) FROM (\n{user}\n) AS c", f"SELECT * FROM (\n{user}\n) AS c LIMIT 5")
    else:  # pragma: no cover - the schema admits no other kinds
        raise ValueError(f"unknown check type {kind}")
    return _over_data(data_sql, f"SELECT COUNT(*) FROM data WHERE {where}", f"SELECT * FROM data WHERE {where} LIMIT 5")


def check_warnings(check: object, target: str, *, dialect: str = "snowflake") -> tuple[str, ...]:
    """What a `sql` check's own query cannot carry over to `target` (other checks are generated per target)."""
    if getattr(check, "type", None) != "sql":
        return ()
    return transpile(check.sql, dialect, target).warnings  # type: ignore[attr-defined]


def _over_data(data_sql: str, value_sql: str, sample_sql: str | None) -> dict[str, object]:
    # The newlines keep a trailing `-- comment` in the spec's query from swallowing the closing parenthesis.
    def over_data(body: str) -> str:
        return f"WITH data AS (\n{data_sql}\n)\n{body}"

    return {"value_sql": over_data(value_sql), "sample_sql": over_data(sample_sql) if sample_sql else None}


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# -- showing what will run ---------------------------------------------------------------------------------


def show(plan: Plan) -> str:
    """The SQL a plan runs, in order, as one script a person can read or paste (`rs compile --show-sql`)."""
    data = plan.data
    how = "as written" if data.dialect == data.warehouse else f"transpiled from {data.dialect}"
    parts = [f"-- {plan.name}: data query on {data.warehouse} ({how})"]
    parts += [f"-- warning: {w}" for w in data.warnings]
    parts.append(data.sql.rstrip() + ";")
    for check in plan.checks:
        parts.append(f"\n-- check {check.name} ({check.type}, {check.severity}): value")
        parts.append(check.value_sql.rstrip() + ";")
        if check.sample_sql:
            parts.append(f"-- check {check.name}: sample of offending rows")
            parts.append(check.sample_sql.rstrip() + ";")
    return "\n".join(parts) + "\n"
