"""The data step: check the data in the warehouse, load it as Arrow and split it, in one step.

One step, one warehouse session: the checks and the query run on the same connection, and the split is
handed on as row indices beside the one stored table (`SplitTable`), not as three more tables. Each later
step takes the parts it reads by index. The step receives only the parts of the plan it reads, so a
sweep over training keys reuses its cached outputs; the data fingerprint parameter makes a changed
table a cache miss, and a changed query, check or split re-runs it.
"""

from __future__ import annotations

from typing import Annotated

from zenml import step

from rscale.compiler.plan import CheckPlan, DataPlan
from rscale.compiler.spec.split import SplitSpec
from rscale.compiler.stack import WarehouseConfig
from rscale.data.split import SplitTable
from rscale.stages import materializers  # noqa: F401  (registers the table and package materializers)
from rscale.stages.progress import report


@step
def load_data(
    checks: list[CheckPlan],
    data: DataPlan,
    warehouse: WarehouseConfig,
    fingerprint: str,
    split: SplitSpec,
    seed: int,
    id_column: str | None = None,
) -> tuple[
    Annotated[SplitTable, "examples"],
    Annotated[dict, "check_report"],
]:
    """Run every data check as SQL in the warehouse (a failing one stops the run before anything is
    loaded), run the spec's query into an Arrow table, and split it deterministically by row index."""
    from rscale.data.checks import run_checks
    from rscale.data.split import split_rows
    from rscale.errors import DataCheckFailed
    from rscale.warehouses import connect

    with connect(warehouse, read_only=True) as wh:
        with report("check", "running data checks in the warehouse") as status:
            result = run_checks(wh, checks)
            status.done(f"{len(checks) - len(result.failed)}/{len(checks)} checks passed")
        if result.failed:
            raise DataCheckFailed(
                "data checks failed, so nothing was trained:\n" + result.render_text(),
                fix="fix the data or the query, or set the check's severity: warn",
            )
        with report("load", f"querying {warehouse.kind}") as status:
            table = wh.query_arrow(data.sql)
            status.done(f"{table.num_rows:,} rows, {table.num_columns} columns")
    with report("split", f"splitting by {split.by}") as status:
        rows = split_rows(table, split, data.time_column, seed, id_column)
        sizes = rows.sizes()
        status.done(f"train {sizes['train']:,} / validation {sizes['validation']:,} / test {sizes['test']:,}")
    return SplitTable(table, rows), result.model_dump(mode="json")
