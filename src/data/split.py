"""Deterministic train/validation/test splits of an Arrow table, by time, by key or seeded at random.

The same table, spec and seed always give the same three parts, in any process: `time` sorts (oldest
rows train, newest test), `key` hashes the key's value with BLAKE2 (never Python's salted `hash()`), so
one key always lands on the same side, and `random` uses a seeded numpy generator. A warehouse does not
promise the order of a query's rows (DuckDB's parallel aggregation returns them in a different order from
run to run), so where the spec names an id column the rows are first put in its order: rows with the same
time, the random split and the training order then never depend on how the query happened to run.

`split_rows` gives each part as row indices into the table as the query returned it; the pipeline stores
the table once with these indices (`SplitTable`: a few bytes a row) rather than three more copies of its
rows, and each step takes the parts it reads with `SplitTable.part` (`split_table` does all three at once).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rscale.compiler.spec.split import SplitSpec
from rscale.errors import RscaleError


class Splits(NamedTuple):
    train: pa.Table
    validation: pa.Table
    test: pa.Table


PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitRows:
    """The three parts of a table as int64 row indices into it, each in the order the part's rows train
    (time order for a time split, the id's or the table's order otherwise)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def part(self, table: pa.Table, name: str) -> pa.Table:
        """The rows of part `name` of `table` (the table these indices were made for): a zero-copy slice
        when they are one ascending run, as a time split without an id column gives."""
        rows = getattr(self, name)
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and bool(np.all(np.diff(rows) == 1)):
            return table.slice(int(rows[0]), len(rows))
        return table.take(pa.array(rows, pa.int64()))

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in PARTS}


@dataclass(frozen=True)
class SplitTable:
    """The query's table with its split as row indices: what the load step hands the later steps, stored
    as one artifact (the table once, as Parquet, beside the indices) rather than three more tables."""

    table: pa.Table
    rows: SplitRows

    def part(self, name: str) -> pa.Table:
        """The rows of part `name` (train, validation or test)."""
        return self.rows.part(self.table, name)


def split_table(
    table: pa.Table, split: SplitSpec, time_column: str | None, seed: int, id_column: str | None = None
) -> Splits:
    """Split `table` as `split` says, in `id_column`'s order where one is named. Raises RscaleError, with a
    fix, when a part would be empty."""
    rows = split_rows(table, split, time_column, seed, id_column)
    return Splits(*(rows.part(table, name) for name in PARTS))


def split_rows(
    table: pa.Table, split: SplitSpec, time_column: str | None, seed: int, id_column: str | None = None
) -> SplitRows:
    """The parts of `table` as `split` says, as row indices into `table` (see `split_table`)."""
    base: np.ndarray | None = None  # the id's order, where one is named: indices into `table`
    ordered = table
    if id_column and id_column in table.column_names:
        base = pc.sort_indices(table, sort_keys=[(id_column, "ascending", "at_end")]).to_numpy().astype(np.int64)
        ordered = table.select([c for c in (split.column or time_column, split.column) if c and c in table.column_names])
        ordered = ordered.take(pa.array(base)) if ordered.num_columns else ordered
    parts = _split_positions(ordered, table.column_names, table.num_rows, split, time_column, seed)
    if base is not None:
        parts = SplitRows(*(base[part] for part in (parts.train, parts.validation, parts.test)))
    sizes = parts.sizes()
    for name in PARTS:
        if sizes[name] == 0:
            raise RscaleError(
                f"split by {split.by} left the {name} part empty ({table.num_rows:,} rows in all: "
                f"train {sizes['train']:,}, validation {sizes['validation']:,}, test {sizes['test']:,})",
                fix="load more rows (check the query and the warehouse), or raise split.validation / split.test"
                + (", or use a key column with more distinct values" if split.by == "key" else ""),
            )
    return parts


def _split_positions(
    table: pa.Table, columns: list[str], rows: int, split: SplitSpec, time_column: str | None, seed: int
) -> SplitRows:
    """The parts as positions in `table`: `rows` rows with at least the split's column of the query's `columns`."""
    if split.by == "time":
        column = split.column or time_column
        if not column:
            raise RscaleError(
                "split.by is `time`, but no time column is named",
                fix="set data.time_column (or split.column) to the column holding each row's time",
            )
        _require(columns, column, "split.column" if split.column else "data.time_column")
        # Stable sort: rows with the same time keep their order (the id's, where the spec names one).
        order = pc.sort_indices(table, sort_keys=[(column, "ascending", "at_start")]).to_numpy().astype(np.int64)
        return _cut(rows, split, order, keep_order=True)
    if split.by == "key":
        if not split.column:
            raise RscaleError(
                "split.by is `key`, but split.column is not set",
                fix="set split.column to the column whose values must stay on one side (e.g. user_id)",
            )
        _require(columns, split.column, "split.column")
        return _by_key(table, split)
    permutation = np.random.default_rng(seed).permutation(rows)
    return _cut(rows, split, permutation, keep_order=False)


def _require(columns: list[str], column: str, where: str) -> None:
    if column not in columns:
        raise RscaleError(
            f"{where} names `{column}`, but the query returns no such column (it returns: {', '.join(columns)})",
            fix=f"set {where} to one of the query's columns, or add `{column}` to the query",
        )


def _sizes(rows: int, split: SplitSpec) -> tuple[int, int]:
    """Rows for validation and test: the fractions rounded, at least one each while train keeps a row."""
    validation = round(rows * split.validation)
    test = round(rows * split.test)
    if rows >= 3:
        validation, test = max(validation, 1), max(test, 1)
    return validation, test


def _cut(rows: int, split: SplitSpec, order: np.ndarray, keep_order: bool) -> SplitRows:
    """Consecutive runs of `order`: train first, then validation, then test. A random permutation's parts
    are sorted back into the table's own row order, so the same seed gives byte-identical parts."""
    validation, test = _sizes(rows, split)
    train = max(rows - validation - test, 0)
    bounds = [(0, train), (train, train + validation), (train + validation, rows)]
    return SplitRows(*(order[start:stop] if keep_order else np.sort(order[start:stop]) for start, stop in bounds))


def _by_key(table: pa.Table, split: SplitSpec) -> SplitRows:
    keys = table.column(split.column).combine_chunks()  # type: ignore[arg-type]
    encoded = keys.dictionary_encode() if not pa.types.is_dictionary(keys.type) else keys
    # A position in [0, 1) per distinct key, from a hash of its text: the same in every process and run.
    positions = np.array([_unit_hash(value) for value in encoded.dictionary.to_pylist()], dtype=np.float64)
    codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    nulls = encoded.is_null().to_numpy(zero_copy_only=False)
    row_position = np.where(nulls, _unit_hash(None), positions[np.where(nulls, 0, codes)] if len(positions) else 0.0)
    train_cut = 1.0 - split.validation - split.test
    side = np.where(row_position < train_cut, 0, np.where(row_position < train_cut + split.validation, 1, 2))
    return SplitRows(*(np.flatnonzero(side == part).astype(np.int64) for part in range(3)))


def _unit_hash(value: object) -> float:
    digest = hashlib.blake2b(repr(value).encode() if not isinstance(value, str) else value.encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64
