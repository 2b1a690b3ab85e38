"""Data steps: check the data in the warehouse, load it as Arrow, split it.

They receive only the parts of the plan they read, so a sweep over training keys reuses their cached
outputs; the data fingerprint parameter makes a changed table a cache miss.
"""

from __future__ import annotations

from typing import Annotated

import pyarrow as pa
from zenml import step

from rscale.compiler.plan import CheckPlan, DataPlan
from rscale.compiler.spec.split import SplitSpec
from rscale.compiler.stack import WarehouseConfig
from rscale.stages import materializers  # noqa: F401  (registers the Arrow and package materializers)
from rscale.stages.progress import report


@step
def check_data(
    checks: list[CheckPlan], warehouse: WarehouseConfig, fingerprint: str
) -> Annotated[dict, "check_report"]:
    """Run every data check as SQL in the warehouse; stop the run before training if one fails."""
    from rscale.data.checks import run_checks
    from rscale.errors import DataCheckFailed
    from rscale.warehouses import connect

    with report("check", "running data checks in the warehouse") as status:
        with connect(warehouse, read_only=True) as wh:
            result = run_checks(wh, checks)
        status.done(f"{len(checks) - len(result.failed)}/{len(checks)} checks passed")
    if result.failed:
        raise DataCheckFailed(
            "data checks failed, so nothing was trained:\n" + result.render_text(),
            fix="fix the data or the query, or set the check's severity: warn",
        )
    return result.model_dump(mode="json")


@step
def load_data(data: DataPlan, warehouse: WarehouseConfig, fingerprint: str) -> Annotated[pa.Table, "examples"]:
    """Run the spec's query on the warehouse into an Arrow table."""
    from rscale.warehouses import connect

    with report("load", f"querying {warehouse.kind}") as status:
        with connect(warehouse, read_only=True) as wh:
            table = wh.query_arrow(data.sql)
        status.done(f"{table.num_rows:,} rows, {table.num_columns} columns")
    return table


@step
def split_data(
    table: pa.Table, split: SplitSpec, time_column: str | None, seed: int, id_column: str | None = None
) -> tuple[
    Annotated[pa.Table, "train"],
    Annotated[pa.Table, "validation"],
    Annotated[pa.Table, "test"],
]:
    """Split deterministically into train, validation and test."""
    from rscale.data.split import split_table

    with report("split", f"splitting by {split.by}") as status:
        parts = split_table(table, split, time_column, seed, id_column)
        status.done(f"train {parts.train.num_rows:,} / validation {parts.validation.num_rows:,} / test {parts.test.num_rows:,}")
    return parts.train, parts.validation, parts.test
