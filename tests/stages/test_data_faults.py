"""The warehouse file is gone when the data step runs: the step fails with an error that names the missing
file and the fix, not a DuckDB catalog error from a fresh, empty database, and creates no empty warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscale.compiler.compilation import compile_spec
from rscale.compiler.stack import DuckDBWarehouse
from rscale.errors import RscaleError


def _entrypoint_args(plan) -> dict:  # type: ignore[no-untyped-def]
    return dict(
        checks=list(plan.checks), data=plan.data, warehouse=plan.stack.warehouse, fingerprint="f",
        split=plan.split, seed=plan.train.seed, id_column=plan.features.id,
    )


def test_a_deleted_warehouse_is_named_by_the_data_step(project: Path) -> None:
    from rscale.data.seed import seed_demo
    from rscale.stages.data import load_data
    from rscale.warehouses.duckdb import warehouse_path

    seed_demo(DuckDBWarehouse(), sessions=600, seed=1)
    plan = compile_spec(project / "specs" / "conversion.yaml", []).plans[0]
    examples, report = load_data.entrypoint(**_entrypoint_args(plan))
    assert report["results"] and all(r["passed"] for r in report["results"])  # the checks ran and passed
    assert sum(examples.rows.sizes().values()) == examples.table.num_rows > 0  # each row is in one part
    path = warehouse_path(plan.stack.warehouse)
    assert path is not None and path.exists()
    path.unlink()  # gone before the next run (a cleanup job, a lost volume)
    with pytest.raises(RscaleError) as raised:
        load_data.entrypoint(**_entrypoint_args(plan))
    assert str(path) in str(raised.value) and "rs seed" in str(raised.value.fix)
    assert not path.exists()  # reading never creates an empty warehouse in its place
