"""The records steps hand on stay typed: a ZenML round trip gives the same model back, and a run's outcome
says by itself whether it is blocked and which exit code `rs run` gives it."""

from __future__ import annotations

from pathlib import Path

from zenml.materializers.pydantic_materializer import PydanticMaterializer

from rscale.errors import EXIT_GATE_BLOCKED
from rscale.models.evaluation import GateDecision
from rscale.stages.artifacts import Deployment, RunOutcome, Training

HISTORY = [{"epoch": 0, "val_loss": 0.6, "val_auc": 0.70, "train_loss": 0.7},
           {"epoch": 1, "val_loss": 0.5, "val_auc": 0.80, "train_loss": 0.5}]


def test_training_carries_the_best_epoch_s_validation_metrics() -> None:
    assert Training.best_metrics(HISTORY, 1) == {"val_loss": 0.5, "val_auc": 0.80}
    assert Training.best_metrics(HISTORY, None) == {} and Training.best_metrics([], 0) == {}


def test_records_survive_zenml_s_pydantic_materializer() -> None:
    from zenml.client import Client

    store = Path(Client().active_stack.artifact_store.path) / "test-stages-records"
    training = Training(package_dir="pkg", checkpoint="ckpt/best.ckpt", best_epoch=1,
                        metrics=Training.best_metrics(HISTORY, 1), history=HISTORY, epochs_run=2)
    deployment = Deployment(deployed=True, reason="gate passed",
                            endpoint={"name": "c", "tier": "local", "url": "http://127.0.0.1:1"})
    for record in (training, deployment):
        folder = store / type(record).__name__
        folder.mkdir(parents=True, exist_ok=True)
        materializer = PydanticMaterializer(str(folder))
        materializer.save(record)
        assert materializer.load(type(record)) == record


def test_a_run_outcome_knows_its_exit_code() -> None:
    def outcome(passed: bool) -> RunOutcome:
        gate = GateDecision(passed=passed, metric="auc", model_value=0.8, baseline_value=0.7, required_value=0.75,
                            reason="auc 0.8 vs 0.75")
        return RunOutcome(name="c", plan_hash="h", run_id="r", run_name="n", seconds=1.0, fingerprint="f", gate=gate,
                          training=Training(package_dir="pkg"))

    assert outcome(True).exit_code == 0 and not outcome(True).blocked
    assert outcome(False).exit_code == EXIT_GATE_BLOCKED and outcome(False).blocked
    assert outcome(True).deployment.deployed is False  # nothing deployed unless the deploy step says so
