"""The embedded default warehouse: one DuckDB file under the project (`.rs/warehouse.duckdb`).

A DuckDB file is open for writing by one process at a time; other processes may open it read-only,
and not while a writer holds it. So readers open it read-only, and a lock conflict is reported with
the process that holds the file and what to do about it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from rscale.errors import RscaleError
from rscale.paths import project_root
from rscale.warehouses import TableInfo

if TYPE_CHECKING:
    import pyarrow as pa  # imported where a table is built: `rs plan` fingerprints without it

    from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig

MEMORY = ":memory:"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def warehouse_path(config: DuckDBConfig) -> Path | None:
    """The file a DuckDB config names, relative to the project root; None for an in-memory warehouse."""
    if config.path == MEMORY:
        return None
    path = Path(config.path).expanduser()
    return path if path.is_absolute() else project_root() / path


def quote_table(name: str) -> str:
    """Quote a possibly dotted table name (`schema.table`) part by part."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


class DuckDBWarehouse:
    """A connection to the project's DuckDB file (or an in-memory database when `path` is `:memory:`)."""

    kind = "duckdb"

    def __init__(self, config: DuckDBConfig, *, read_only: bool = False) -> None:
        self.path = warehouse_path(config)
        self.read_only = read_only
        self._con = self._open()

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self.path is None:
            return duckdb.connect(MEMORY)
        if self.read_only and not self.path.exists():
            raise RscaleError(
                f"there is no warehouse at {self.path}",
                fix="run `rs seed` to create the demo warehouse, or set `warehouse.path` in the stack",
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.IOException as exc:
            held = _LOCK_HOLDER.search(str(exc))
            if held is None:
                raise RscaleError(f"cannot open the warehouse {self.path}: {exc}") from None
            raise RscaleError(
                f"the warehouse {self.path} is open for writing by another process "
                f"({held['program']}, PID {held['pid']}); DuckDB lets one process at a time write a file, "
                "and no other process read it meanwhile",
                fix=f"wait for that process to finish, or stop it (kill {held['pid']}) if it is a stale "
                "`rs` command, notebook or DuckDB shell; keep only one writer open at a time",
            ) from None
        except duckdb.ConnectionException as exc:
            if "different configuration" not in str(exc):
                raise
            mode = "read-only" if self.read_only else "for writing"
            raise RscaleError(
                f"cannot open the warehouse {self.path} {mode}: this process already has it open in the other mode",
                fix="close the other connection first (use `with connect(...) as warehouse:` blocks)",
            ) from None

    # -- reading -------------------------------------------------------------------------------------

    def query_arrow(self, sql: str) -> pa.Table:
        relation = self._con.sql(sql)
        if relation is None:
            import pyarrow as pa

            return pa.table({})
        return relation.to_arrow_table()

    def scalar(self, sql: str) -> Any:
        row = self._first_row(sql)
        return None if row is None else row[0]

    def _first_row(self, sql: str, parameters: list[Any] | None = None) -> tuple[Any, ...] | None:
        # DuckDB 2.0 keeps an unfinished execute() result on the connection and refuses other work until
        # it is finished, so take the first row and drop the rest.
        result = self._con.execute(sql, parameters)
        rows = result.fetchmany(1)
        self._con.abort()
        return rows[0] if rows else None

    def schema(self, sql: str) -> list[tuple[str, str]]:
        # A relation is bound, not run, until it is fetched: its columns and types come for free.
        relation = self._con.sql(sql)
        if relation is None:
            return []
        return [(name, str(kind)) for name, kind in zip(relation.columns, relation.types, strict=True)]

    def table_exists(self, table: str) -> bool:
        *schema, name = table.split(".")
        sql = "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = ?"
        if schema:
            sql += " AND table_schema = ?"
        row = self._first_row(sql, [name, *schema[-1:]])
        return bool(row and row[0])

    def tables(self) -> list[TableInfo]:
        """Every table and view outside DuckDB's own schemas, with exact row counts for tables."""
        listing = self._con.execute(
            "SELECT t.table_schema, t.table_name, t.table_type, COUNT(c.column_name) "
            "FROM information_schema.tables AS t JOIN information_schema.columns AS c "
            "ON c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.table_catalog = t.table_catalog "
            "WHERE t.table_schema NOT IN ('information_schema', 'pg_catalog') AND t.table_catalog NOT IN ('system', 'temp') "
            "GROUP BY ALL ORDER BY 1, 2"
        ).fetchall()
        out: list[TableInfo] = []
        for schema, name, kind, columns in listing:
            full = name if schema == "main" else f"{schema}.{name}"
            is_view = "VIEW" in str(kind).upper()
            rows = None if is_view else self.scalar(f"SELECT COUNT(*) FROM {quote_table(full)}")
            out.append({"name": full, "kind": "view" if is_view else "table", "rows": rows, "columns": int(columns)})
        return out

    def fingerprint(self, sql: str) -> str:
        """Row count, a checksum of every row and the schema of each table the query reads, plus the query.

        DuckDB keeps no per-table modification time, so the checksum (a sum of row hashes, order-free)
        is what notices an edited row. A query whose tables sqlglot cannot name (a table function such
        as `read_parquet`) is fingerprinted by a checksum of its own result instead.
        """
        digest = hashlib.sha256(sql.strip().encode())
        tables = tables_read(sql)
        sources = [f"SELECT * FROM {quote_table(t)}" for t in sorted(tables)] if tables is not None else [sql]
        for source in sources:
            count, checksum = self._first_row(f"SELECT COUNT(*), SUM(HASH(r)::HUGEINT) FROM ({source}) AS r")  # type: ignore[misc]
            digest.update(f"\n{source}\n{self.schema(source)}\n{count}\n{checksum}".encode())
        return digest.hexdigest()[:32]

    # -- writing -------------------------------------------------------------------------------------

    def execute(self, sql: str) -> None:
        self._writable()
        self._run(sql)

    def _run(self, sql: str) -> None:
        self._con.execute(sql).fetchall()  # finish the result (a row count for DML), see _first_row

    def append(self, table: str, data: pa.Table) -> int:
        self._writable()
        target = quote_table(table)
        view = "__rs_append"
        self._con.register(view, data)
        try:
            self._run("BEGIN TRANSACTION")
            self._run(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM {view} LIMIT 0")
            self._run(f"INSERT INTO {target} BY NAME SELECT * FROM {view}")
            self._run("COMMIT")
        except Exception:
            self._run("ROLLBACK")
            raise
        finally:
            self._con.unregister(view)
        return data.num_rows

    def replace(self, table: str, data: pa.Table) -> int:
        """Create or replace `table` with exactly these rows (used by `rs seed`)."""
        self._writable()
        view = "__rs_replace"
        self._con.register(view, data)
        try:
            self._run(f"CREATE OR REPLACE TABLE {quote_table(table)} AS SELECT * FROM {view}")
        finally:
            self._con.unregister(view)
        return data.num_rows

    def _writable(self) -> None:
        if self.read_only:
            raise RscaleError(
                f"the warehouse {self.path} was opened read-only, so it cannot be written",
                fix="open it with connect(config, read_only=False) where the step writes",
            )

    # -- lifetime ------------------------------------------------------------------------------------

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.path or MEMORY}, read_only={self.read_only})"


def tables_read(sql: str) -> set[str] | None:
    """The tables (and views) a DuckDB query reads, without its own CTE names; None if sqlglot cannot tell."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except ParseError:
        return None
    names: set[str] = set()
    for tree in statements:
        if tree is None:
            continue
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                return None  # a table function: its data is not in a named table
            if not table.db and table.name.lower() in ctes:
                continue
            names.add(".".join(part for part in (table.catalog, table.db, table.name) if part))
    return names
