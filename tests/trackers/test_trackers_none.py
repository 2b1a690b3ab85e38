"""`tracker: {kind: none}`: every call succeeds and nothing is written anywhere."""

from __future__ import annotations

from rscale.trackers import open_run, preflight


def test_no_tracker_logs_nothing_and_training_runs_without_a_logger(project, compile_plan, fit_two_epochs, tmp_path):
    plan = compile_plan("tracker={kind:none}")
    assert plan.tracker.kind == "none"
    preflight(plan)
    run = open_run(plan, "conversion-train", tags={"rscale.sweep_id": "s"})
    assert run.lightning_logger() is None and run.url is None and run.run_id
    trainer, _ = fit_two_epochs([run.lightning_logger()] if run.lightning_logger() else [])
    assert trainer.current_epoch == 2 and trainer.logger is None
    (tmp_path / "model.pt").write_bytes(b"w")
    run.log_metrics({"final.auc": 0.8})
    run.log_artifact(tmp_path / "model.pt")
    run.log_link("package", "s3://b/p")
    run.log_dict("checks", {"ok": True})
    run.close()
    assert run.errors == []
    again = open_run(plan, "conversion-evaluate", run_id=run.run_id)
    assert again.run_id == run.run_id and again.errors == []
    state = project / ".rs"
    assert (
        not (state / "mlflow.db").exists()
        and not (state / ".neptune").exists()
        and not (state / "mlartifacts").exists()
    )
