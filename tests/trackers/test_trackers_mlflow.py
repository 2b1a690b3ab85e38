"""MLflow, the default tracker: a real run on the SQLite store under .rs/, read back with MlflowClient."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rscale.errors import RscaleError
from rscale.trackers import SWEEP_ID_TAG, ZENML_RUN_ID_TAG, open_run, preflight


def client_for(project: Path) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project / '.rs' / 'mlflow.db'}")


def test_a_run_reads_back_as_logged(project, compile_plan, fit_two_epochs, recorder, tmp_path):
    plan = compile_plan()  # the spec says tracker: {kind: mlflow}, no URI: the local store
    assert plan.tracker.kind == "mlflow"
    preflight(plan)
    run = open_run(plan, "conversion-train", tags={ZENML_RUN_ID_TAG: "zen-1", SWEEP_ID_TAG: "sweep-9"})
    trainer, _ = fit_two_epochs([run.lightning_logger(), recorder])
    assert trainer.current_epoch == 2
    run.log_metrics({"final": {"auc": 0.81, "accuracy": 0.75}, "baseline": {"auc": 0.5}})
    run.set_tags({"rscale.gate": "passed"})
    package = tmp_path / "package"
    package.mkdir()
    (package / "model.pt").write_bytes(b"weights")
    (package / "manifest.json").write_text('{"version": 1}')
    run.log_artifact(package)
    run.log_link("endpoint", "http://127.0.0.1:8080/invocations")
    run.log_dict("checks", {"row_count": {"passed": True, "value": 812}})
    run.close()
    assert run.errors == []

    client = client_for(project)
    stored = client.get_run(run.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "conversion-train"
    assert stored.info.artifact_uri.startswith((project / ".rs" / "mlartifacts").as_uri())
    for key in ("train_loss", "val_loss"):
        history = [(m.step, m.value) for m in client.get_metric_history(run.run_id, key)]
        assert sorted(history) == sorted(recorder.series(key))
        assert len(history) == 2  # one per epoch
    assert stored.data.metrics["final.auc"] == 0.81
    assert stored.data.metrics["final.accuracy"] == 0.75
    assert stored.data.metrics["baseline.auc"] == 0.5
    params = stored.data.params
    assert params["train.lr"] == "0.003" and params["model.hidden"] == "[32, 16]" and params["name"] == "conversion"
    assert params["hparams.lr"] == "0.1" and params["hparams.hidden"] == "4"  # the module's save_hyperparameters()
    assert params["tracker.kind"] == "mlflow"
    tags = stored.data.tags
    assert tags[ZENML_RUN_ID_TAG] == "zen-1" and tags[SWEEP_ID_TAG] == "sweep-9"
    assert tags["rscale.plan_hash"] == plan.hash and tags["rscale.gate"] == "passed"
    assert tags["rscale.link.endpoint"] == "http://127.0.0.1:8080/invocations"
    download = Path(client.download_artifacts(run.run_id, "", str(tmp_path / "down")))
    assert (download / "package" / "model.pt").read_bytes() == b"weights"
    assert json.loads((download / "checks.json").read_text()) == {"row_count": {"passed": True, "value": 812}}
    assert json.loads((download / "plan.json").read_text())["hash"] == plan.hash


def test_evaluate_reopens_the_run_in_another_process(project, compile_plan):
    plan = compile_plan()
    run = open_run(plan, "conversion-train")
    run.log_metrics({"val_loss": 0.4}, step=3)
    run.close()
    (project / "plan.json").write_text(plan.to_json())
    script = (
        "import sys; from rscale.compiler.plan import Plan; from rscale.trackers import open_run\n"
        "run = open_run(Plan.read('plan.json'), 'conversion-evaluate', run_id=sys.argv[1])\n"
        "run.log_metrics({'final.auc': 0.9}); run.set_tags({'rscale.gate': 'failed'}); run.close('FAILED')\n"
        "assert run.errors == [], run.errors\n"
    )
    subprocess.run([sys.executable, "-c", script, run.run_id], cwd=project, check=True, timeout=120)

    stored = client_for(project).get_run(run.run_id)
    assert stored.data.metrics == {"val_loss": 0.4, "final.auc": 0.9}
    assert stored.data.tags["rscale.gate"] == "failed"
    assert stored.info.status == "FAILED"


def test_preflight_fails_clearly_for_an_unreachable_server(project, compile_plan):
    plan = compile_plan("+tracker.tracking_uri=http://127.0.0.1:9")
    with pytest.raises(RscaleError) as failed:
        preflight(plan)
    message = str(failed.value)
    assert "http://127.0.0.1:9" in message and "tracker.tracking_uri in the spec" in message
    assert "start the tracking server" in failed.value.fix
    with pytest.raises(RscaleError, match="127.0.0.1:9"):
        open_run(plan, "never-starts")


def test_preflight_fails_for_a_store_that_cannot_be_created(project, compile_plan):
    (project / "not-a-folder").write_text("a file where the store's folder should be")
    plan = compile_plan(f"+tracker.tracking_uri=sqlite:///{project / 'not-a-folder' / 'mlflow.db'}")
    with pytest.raises(RscaleError, match="not-a-folder"):
        preflight(plan)


def test_the_spec_uri_wins_over_the_stack_uri(project, compile_plan, monkeypatch):
    from rscale.trackers.mlflow import tracking_target

    plan = compile_plan()
    stacked = plan.model_copy(
        update={
            "stack": plan.stack.model_copy(
                update={"tracker": plan.stack.tracker.model_copy(update={"mlflow_tracking_uri": "${env:TEAM_MLFLOW}"})}
            )
        }
    )
    monkeypatch.setenv("TEAM_MLFLOW", "https://user:s3cret@mlflow.example.com")
    target = tracking_target(stacked)
    assert target.uri == "https://user:s3cret@mlflow.example.com" and "stack `local`" in target.source
    assert target.shown == "https://user:***@mlflow.example.com"
    spec_plan = compile_plan("+tracker.tracking_uri=sqlite:///elsewhere.db")
    both = spec_plan.model_copy(update={"stack": stacked.stack})
    assert tracking_target(both).uri == "sqlite:///elsewhere.db"
    assert tracking_target(plan).uri == f"sqlite:///{project / '.rs' / 'mlflow.db'}"


def test_a_store_failing_mid_fit_does_not_stop_training(project, compile_plan, fit_two_epochs):
    import pytorch_lightning as pl

    plan = compile_plan()
    run = open_run(plan, "conversion-train")
    database = project / ".rs" / "mlflow.db"

    class BreakTheStore(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            if trainer.current_epoch == 0:
                with sqlite3.connect(database) as connection:
                    connection.execute("DROP TABLE latest_metrics")
                    connection.execute("DROP TABLE metrics")

    trainer, _ = fit_two_epochs([run.lightning_logger()], [BreakTheStore()])
    assert trainer.current_epoch == 2  # both epochs trained
    run.log_metrics({"final.auc": 0.8})  # after three failures in a row the run stops calling the store
    run.close()  # never raises, though MLflow cannot even end a run whose metrics tables are gone
    assert run.errors, "the failure must be reported"
    assert any(e.startswith("log_metrics: ") and "metrics" in e for e in run.errors)
    assert any("skipped" in e for e in run.errors)
    assert not any(e.startswith("set_tags") or e.startswith("log_params") for e in run.errors)
