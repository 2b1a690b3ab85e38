"""Multi-GPU training under ZenML: DDP runs in a child process, so the pipeline runs (and is recorded) once.

No GPU here: RS_DDP_ACCELERATOR=cpu makes the DDP child use two CPU processes with gloo, which is
exactly the path `train.gpus: 2` takes on a two-GPU machine, minus the device.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rscale.compiler.compilation import compile_spec
from rscale.compiler.emit import emit
from rscale.compiler.stack import DuckDBWarehouse

pytestmark = pytest.mark.e2e

TWO_GPU_STACK = """\
name: twogpu
description: a machine with two GPUs (the DDP child runs on two CPU processes in this test)
gpus: 2
warehouse: {kind: duckdb, path: .rs/warehouse.duckdb}
serving: {tiers: [local]}
"""


def test_two_process_ddp_trains_once_and_records_one_pipeline_run(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zenml.client import Client

    from rscale.data.seed import seed_demo
    from rscale.stages.runner import run_compiled

    (project / "stacks" / "twogpu.yaml").write_text(TWO_GPU_STACK)
    monkeypatch.setenv("RS_STACKS_DIR", str(project / "stacks"))
    monkeypatch.setenv("RS_DDP_ACCELERATOR", "cpu")
    seed_demo(DuckDBWarehouse(), sessions=800, seed=5)
    plan = compile_spec(
        "specs/conversion.yaml", ["train.gpus=2", "train.max_epochs=1", "evaluate.gate.min_lift=-1.0"], stack="twogpu"
    ).plans[0]
    assert (plan.hardware.strategy, plan.hardware.devices, plan.hardware.launcher) == ("ddp", 2, "subprocess")

    runs_before = Client().list_pipeline_runs(size=1).total
    outcome = run_compiled(emit(plan) / "plan.json", {}, deploy=False)
    runs_after = Client().list_pipeline_runs(size=1).total

    assert runs_after == runs_before + 1  # DDP did not re-execute the pipeline
    assert outcome.training.epochs_run == 1
    assert outcome.metrics["auc"] > 0
    run = Client().get_pipeline_run(outcome.run_id)
    assert {step.status.value for step in run.steps.values()} == {"completed"}
