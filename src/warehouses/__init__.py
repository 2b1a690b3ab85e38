"""Warehouses: where a spec's rows come from, behind one small interface (`Warehouse`).

`connect(config)` picks the implementation registered for the stack's `warehouse.kind`
(`rscale.compiler.stack.WAREHOUSES`) and imports it only then, so the compiler never imports DuckDB or
Snowpark. Every SQL string given to a warehouse is already in that warehouse's own dialect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa
    from pydantic import BaseModel


@runtime_checkable
class Warehouse(Protocol):
    """One open connection to a warehouse. Use it as a context manager, or call `close()`."""

    kind: str

    def query_arrow(self, sql: str) -> pa.Table:
        """Run a query and return its whole result as an Arrow table."""
        ...

    def scalar(self, sql: str) -> Any:
        """Run a query and return the first column of its first row (None when it returns no rows)."""
        ...

    def schema(self, sql: str) -> list[tuple[str, str]]:
        """Column names and types of the query's result, without running the query in full."""
        ...

    def fingerprint(self, sql: str) -> str:
        """A value that changes whenever the data behind `sql` changes (cache key for the load step)."""
        ...

    def append(self, table: str, data: pa.Table) -> int:
        """Append rows to `table`, creating it from the rows' schema when missing. Returns rows written."""
        ...

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing of interest (DDL, DELETE)."""
        ...

    def table_exists(self, table: str) -> bool:
        """Whether `table` exists (a view counts)."""
        ...

    def tables(self) -> list[TableInfo]:
        """The tables and views of the warehouse's current schema (DuckDB: every user schema), with row counts."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Warehouse: ...

    def __exit__(self, *exc: object) -> None: ...


class TableInfo(TypedDict):
    """One table or view, as `rs tables` lists it."""

    name: str
    kind: str  # table or view
    rows: int | None  # None where the warehouse does not know without scanning (a view)
    columns: int


def connect(config: BaseModel, *, read_only: bool = False) -> Warehouse:
    """Open the warehouse a stack's `warehouse:` block describes. Read-only when the caller only reads.

    A DuckDB file takes one writer at a time, so readers ask for `read_only=True` and let a running
    endpoint or a second `rs` process read alongside them.
    """
    from rscale.compiler.stack import WAREHOUSES

    implementation = WAREHOUSES.load(config.kind)  # type: ignore[attr-defined]
    return implementation(config, read_only=read_only)  # type: ignore[no-any-return]


__all__ = ["TableInfo", "Warehouse", "connect"]
