"""Deterministic train/validation/test splits of an Arrow table, by time, by key or seeded at random.

The same table, spec and seed always give the same three parts, in any process: `time` sorts (oldest
rows train, newest test), `key` hashes the key's value with BLAKE2 (never Python's salted `hash()`), so
one key always lands on the same side, and `random` uses a seeded numpy generator. A warehouse does not
promise the order of a query's rows (DuckDB's parallel aggregation returns them in a different order from
run to run), so where the spec names an id column the rows are first put in its order: rows with the same
time, the random split and the training order then never depend on how the query happened to run.
"""

from __future__ import annotations

import hashlib
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


def split_table(
    table: pa.Table, split: SplitSpec, time_column: str | None, seed: int, id_column: str | None = None
) -> Splits:
    """Split `table` as `split` says, in `id_column`'s order where one is named. Raises RscaleError, with a
    fix, when a part would be empty."""
    if id_column and id_column in table.column_names:
        table = table.take(pc.sort_indices(table, sort_keys=[(id_column, "ascending", "at_end")]))
    if split.by == "time":
        column = split.column or time_column
        if not column:
            raise RscaleError(
                "split.by is `time`, but no time column is named",
                fix="set data.time_column (or split.column) to the column holding each row's time",
            )
        _require(table, column, "split.column" if split.column else "data.time_column")
        # Stable sort: rows with the same time keep their order (the id's, where the spec names one).
        order = pc.sort_indices(table, sort_keys=[(column, "ascending", "at_start")])
        parts = _cut(table.take(order), split)
    elif split.by == "key":
        if not split.column:
            raise RscaleError(
                "split.by is `key`, but split.column is not set",
                fix="set split.column to the column whose values must stay on one side (e.g. user_id)",
            )
        _require(table, split.column, "split.column")
        parts = _by_key(table, split)
    else:
        permutation = np.random.default_rng(seed).permutation(table.num_rows)
        parts = _cut(table, split, permutation)
    for name, part in zip(Splits._fields, parts, strict=True):
        if part.num_rows == 0:
            raise RscaleError(
                f"split by {split.by} left the {name} part empty ({table.num_rows:,} rows in all: "
                f"train {parts.train.num_rows:,}, validation {parts.validation.num_rows:,}, test {parts.test.num_rows:,})",
                fix="load more rows (check the query and the warehouse), or raise split.validation / split.test"
                + (", or use a key column with more distinct values" if split.by == "key" else ""),
            )
    return parts


def _require(table: pa.Table, column: str, where: str) -> None:
    if column not in table.column_names:
        raise RscaleError(
            f"{where} names `{column}`, but the query returns no such column (it returns: {', '.join(table.column_names)})",
            fix=f"set {where} to one of the query's columns, or add `{column}` to the query",
        )


def _sizes(rows: int, split: SplitSpec) -> tuple[int, int]:
    """Rows for validation and test: the fractions rounded, at least one each while train keeps a row."""
    validation = round(rows * split.validation)
    test = round(rows * split.test)
    if rows >= 3:
        validation, test = max(validation, 1), max(test, 1)
    return validation, test


def _cut(table: pa.Table, split: SplitSpec, order: np.ndarray | None = None) -> Splits:
    rows = table.num_rows
    validation, test = _sizes(rows, split)
    train = max(rows - validation - test, 0)
    indices = np.arange(rows) if order is None else order
    bounds = [(0, train), (train, train + validation), (train + validation, rows)]
    if order is None:
        return Splits(*(table.slice(start, stop - start) for start, stop in bounds))
    # Each random part keeps the table's own row order, so the same seed gives byte-identical parts.
    return Splits(*(table.take(pa.array(np.sort(indices[start:stop]))) for start, stop in bounds))


def _by_key(table: pa.Table, split: SplitSpec) -> Splits:
    keys = table.column(split.column).combine_chunks()  # type: ignore[arg-type]
    encoded = keys.dictionary_encode() if not pa.types.is_dictionary(keys.type) else keys
    # A position in [0, 1) per distinct key, from a hash of its text: the same in every process and run.
    positions = np.array([_unit_hash(value) for value in encoded.dictionary.to_pylist()], dtype=np.float64)
    codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    nulls = encoded.is_null().to_numpy(zero_copy_only=False)
    row_position = np.where(nulls, _unit_hash(None), positions[np.where(nulls, 0, codes)] if len(positions) else 0.0)
    train_cut = 1.0 - split.validation - split.test
    side = np.where(row_position < train_cut, 0, np.where(row_position < train_cut + split.validation, 1, 2))
    return Splits(*(table.filter(pa.array(side == part)) for part in range(3)))


def _unit_hash(value: object) -> float:
    digest = hashlib.blake2b(repr(value).encode() if not isinstance(value, str) else value.encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64
