"""The warehouse disappears between the check step and the load step: the load step fails with an error that
names the missing file and the fix, not a DuckDB catalog error from a fresh, empty database."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscale.compiler.compilation import compile_spec
from rscale.compiler.stack import DuckDBWarehouse
from rscale.errors import RscaleError


def test_a_warehouse_deleted_after_the_checks_is_named_by_the_load(project: Path) -> None:
    from rscale.data.seed import seed_demo
    from rscale.stages.data import check_data, load_data
    from rscale.warehouses.duckdb import warehouse_path

    seed_demo(DuckDBWarehouse(), sessions=600, seed=1)
    plan = compile_spec(project / "specs" / "conversion.yaml", []).plans[0]
    report = check_data.entrypoint(checks=plan.checks, warehouse=plan.stack.warehouse, fingerprint="f")
    assert report  # the checks ran on the warehouse and passed (a failure raises)
    path = warehouse_path(plan.stack.warehouse)
    assert path is not None and path.exists()
    path.unlink()  # gone between the two steps (a cleanup job, a lost volume)
    with pytest.raises(RscaleError) as raised:
        load_data.entrypoint(data=plan.data, warehouse=plan.stack.warehouse, fingerprint="f")
    assert str(path) in str(raised.value) and "rs seed" in str(raised.value.fix)
    assert not path.exists()  # reading never creates an empty warehouse in its place
