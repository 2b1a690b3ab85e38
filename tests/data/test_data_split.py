"""Splits: deterministic, disjoint and complete; time keeps the future out of training; keys stay on one side."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rscale.compiler.spec.split import SplitSpec
from rscale.data.split import split_table
from rscale.errors import RscaleError

ROWS = 1000


@pytest.fixture(scope="module")
def table() -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "row": np.arange(ROWS),
            "user_id": [f"u{i}" for i in rng.integers(0, 150, ROWS)],
            "ts": pa.array(rng.permutation(ROWS) * 1_000_000, pa.timestamp("us")),
        }
    )


def rows(part: pa.Table) -> set[int]:
    return set(part["row"].to_pylist())


def assert_partition(parts, total: int) -> None:
    train, validation, test = map(rows, parts)
    assert not (train & validation or train & test or validation & test)
    assert len(train | validation | test) == total


def test_time_split_puts_the_oldest_rows_in_train_and_the_newest_in_test(table):
    parts = split_table(table, SplitSpec(by="time", validation=0.1, test=0.2), "ts", seed=0)
    assert_partition(parts, ROWS)
    assert (parts.train.num_rows, parts.validation.num_rows, parts.test.num_rows) == (700, 100, 200)
    assert pc.max(parts.train["ts"]).as_py() < pc.min(parts.validation["ts"]).as_py()
    assert pc.max(parts.validation["ts"]).as_py() < pc.min(parts.test["ts"]).as_py()
    assert split_table(table, SplitSpec(by="time"), "ts", seed=0).test.equals(
        split_table(table, SplitSpec(by="time", column="ts"), None, seed=5).test
    )


def test_random_split_is_seeded(table):
    spec = SplitSpec(by="random")
    first = split_table(table, spec, None, seed=3)
    assert_partition(first, ROWS)
    again = split_table(table, spec, None, seed=3)
    assert all(a.equals(b) for a, b in zip(first, again, strict=True))
    assert rows(split_table(table, spec, None, seed=4).test) != rows(first.test)


def test_key_split_keeps_each_key_on_one_side_in_any_process(table):
    spec = SplitSpec(by="key", column="user_id", validation=0.2, test=0.2)
    parts = split_table(table, spec, None, seed=0)
    assert_partition(parts, ROWS)
    sides = [set(part["user_id"].to_pylist()) for part in parts]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert all(part.num_rows > 100 for part in parts)
    # Another interpreter (another hash salt) puts the same keys on the same side.
    code = (
        "import pyarrow as pa\n"
        "from rscale.compiler.spec.split import SplitSpec\n"
        "from rscale.data.split import split_table\n"
        "t = pa.table({'user_id': [f'u{i}' for i in range(150)]})\n"
        "parts = split_table(t, SplitSpec(by='key', column='user_id', validation=0.2, test=0.2), None, 9)\n"
        "print(sorted(parts.test['user_id'].to_pylist()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"}
    )
    assert eval(out.stdout) == sorted(sides[2])


def test_an_empty_part_is_an_error_with_a_fix():
    tiny = pa.table({"user_id": ["a", "a", "a", "a"], "row": [0, 1, 2, 3]})
    with pytest.raises(RscaleError) as error:
        split_table(tiny, SplitSpec(by="key", column="user_id"), None, seed=0)
    assert "empty" in str(error.value) and error.value.fix
    with pytest.raises(RscaleError, match="empty"):
        split_table(tiny.slice(0, 2), SplitSpec(by="random"), None, seed=0)


def test_missing_columns_name_the_fix(table):
    with pytest.raises(RscaleError) as no_time:
        split_table(table, SplitSpec(by="time"), None, seed=0)
    assert "data.time_column" in (no_time.value.fix or "")
    with pytest.raises(RscaleError) as wrong:
        split_table(table, SplitSpec(by="time", column="when"), None, seed=0)
    assert "`when`" in str(wrong.value) and "ts" in str(wrong.value)
    with pytest.raises(RscaleError, match="split.column"):
        split_table(table, SplitSpec(by="key"), None, seed=0)


@pytest.mark.parametrize("by", ["time", "random"])
def test_the_query_row_order_never_changes_the_split_where_an_id_is_named(by):
    """A warehouse returns a query's rows in any order; named id, the parts and their order are the same."""
    rows = 600
    table = pa.table({"id": [f"s{i:04d}" for i in range(rows)], "ts": np.arange(rows) // 3})  # ties of three
    spec = SplitSpec(by=by)
    first = split_table(table, spec, "ts", seed=1, id_column="id")
    shuffled = table.take(np.random.default_rng(7).permutation(rows))
    again = split_table(shuffled, spec, "ts", seed=1, id_column="id")
    for name in ("train", "validation", "test"):
        assert getattr(first, name)["id"].to_pylist() == getattr(again, name)["id"].to_pylist(), name
