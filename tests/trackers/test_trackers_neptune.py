"""Neptune over the 1.x client, offline (operation logs read back from disk) and debug (read back in memory)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from rscale.errors import RscaleError
from rscale.trackers import SWEEP_ID_TAG, ZENML_RUN_ID_TAG, open_run, preflight

NEPTUNE = ["tracker.kind=neptune", "+tracker.project=acme/conv"]
TOKEN_SENTINEL = "sentinel-token-that-must-never-be-written"


def replay(folder: Path) -> dict[str, Any]:
    """The fields of one offline Neptune run, rebuilt from its operation log (what `neptune sync` would send)."""
    fields: dict[str, Any] = {}
    for log in sorted(folder.glob("data-*.log")):
        for line in log.read_text().splitlines():
            op = json.loads(line)["obj"]
            key = "/".join(op["path"])
            kind = op["type"]
            if kind.startswith("Assign"):
                fields[key] = op["value"]
            elif kind in ("LogFloats", "LogStrings"):
                fields.setdefault(key, []).extend((v["step"], v["value"]) for v in op["values"])
            elif kind == "AddStrings":
                fields.setdefault(key, set()).update(op["values"])
            elif kind == "UploadFile":
                fields[key] = Path(op["file_path"] or folder / "upload_path" / op["tmp_file_name"])
            elif kind == "UploadFileSet":
                fields[key] = [Path(glob) for glob in op["file_globs"]]
    return fields


def offline_runs(data_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """Every offline folder written for one rscale run (one per opening), oldest first."""
    folders = sorted(
        (data_dir / "offline").glob("run__*"),
        key=lambda f: json.loads((f / "metadata.json").read_text())["createdAt"],
    )
    return [fields for fields in map(replay, folders) if fields.get("rscale/run_id") == run_id]


@pytest.fixture
def neptune_dir(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Unset NEPTUNE_DATA_DIRECTORY, so the tracker must put Neptune's data under the project's .rs/."""
    monkeypatch.delenv("NEPTUNE_DATA_DIRECTORY", raising=False)
    monkeypatch.setenv("NEPTUNE_API_TOKEN", TOKEN_SENTINEL)
    return project / ".rs" / ".neptune"


def test_an_offline_run_reads_back_as_logged(neptune_dir, compile_plan, fit_two_epochs, recorder, tmp_path):
    plan = compile_plan(*NEPTUNE, "+tracker.mode=offline")
    preflight(plan)
    run = open_run(plan, "conversion-train", tags={ZENML_RUN_ID_TAG: "zen-1", SWEEP_ID_TAG: "sweep-9"})
    assert run.url is None  # offline runs have no page until `neptune sync`
    trainer, _ = fit_two_epochs([run.lightning_logger(), recorder])
    assert trainer.current_epoch == 2
    run.close()
    assert run.errors == []

    # evaluate and register re-open the run by id
    again = open_run(plan, "conversion-evaluate", run_id=run.run_id)
    again.log_metrics({"final": {"auc": 0.81}, "baseline": {"auc": 0.5}})
    again.set_tags({"rscale.gate": "passed"})
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    again.log_artifact(model)
    again.log_link("package", "s3://bucket/conversion/1")
    again.log_dict("checks", {"row_count": {"passed": True, "value": 812}})
    again.close("FAILED")
    assert again.errors == []

    train, evaluate = offline_runs(neptune_dir, run.run_id)
    for key in ("train_loss", "val_loss"):
        assert sorted(train[f"metrics/{key}"]) == sorted(recorder.series(key))
        assert len(train[f"metrics/{key}"]) == 2  # one per epoch
    assert train["sys/name"] == "conversion-train"
    assert train["parameters/train.lr"] == 0.003 and train["parameters/model.hidden"] == "[32, 16]"
    assert train["parameters/hparams.lr"] == 0.1 and train["parameters/hparams.hidden"] == 4
    assert train["parameters/tracker.api_token"] == "${env:NEPTUNE_API_TOKEN}"  # the reference, not the token
    assert train["tags/rscale.zenml_run_id"] == "zen-1" and train["tags/rscale.sweep_id"] == "sweep-9"
    assert {"rscale.zenml_run_id:zen-1", "rscale.sweep_id:sweep-9"} <= train["sys/tags"]
    assert json.loads(train["reports/plan"].read_text())["hash"] == plan.hash
    assert train["rscale/status"] == "FINISHED"

    assert evaluate["metrics/final.auc"] == [(None, 0.81)] and evaluate["metrics/baseline.auc"] == [(None, 0.5)]
    assert evaluate["tags/rscale.gate"] == "passed"
    assert evaluate["artifacts/model.pt"].read_bytes() == b"weights"
    assert evaluate["links/package"] == "s3://bucket/conversion/1"
    assert json.loads(evaluate["reports/checks"].read_text()) == {"row_count": {"passed": True, "value": 812}}
    assert evaluate["rscale/status"] == "FAILED" and evaluate["sys/failed"] is True

    written = b"".join(p.read_bytes() for p in neptune_dir.rglob("*") if p.is_file())
    assert TOKEN_SENTINEL.encode() not in written


def test_a_debug_run_reads_back_in_memory(neptune_dir, compile_plan, fit_two_epochs, recorder):
    run = open_run(compile_plan(*NEPTUNE, "+tracker.mode=debug"), "conversion-debug")
    fit_two_epochs([run.lightning_logger(), recorder])
    run.log_metrics({"final.auc": 0.77})
    run.set_tags({"rscale.gate": "passed"})
    handle = run.handle  # debug mode keeps everything in this object until close
    values = handle["metrics/val_loss"].fetch_values()
    # debug mode's in-memory backend numbers points 0, 1, ... itself; the values are what Lightning logged
    assert list(values["value"]) == [value for _, value in recorder.series("val_loss")]
    assert handle["parameters/train.batch_size"].fetch() == 256
    assert handle["rscale/run_id"].fetch() == run.run_id
    assert handle["metrics/final.auc"].fetch_last() == 0.77
    assert "rscale.gate:passed" in handle["sys/tags"].fetch()
    run.close()
    assert run.errors == []


def test_the_client_failing_mid_fit_does_not_stop_training(neptune_dir, compile_plan, fit_two_epochs):
    import pytorch_lightning as pl

    run = open_run(compile_plan(*NEPTUNE, "+tracker.mode=offline"), "conversion-train")

    class StopTheClient(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            if trainer.current_epoch == 0:
                run.handle.stop()  # the client dies under the tracker; later calls raise InactiveRunException

    trainer, _ = fit_two_epochs([run.lightning_logger()], [StopTheClient()])
    assert trainer.current_epoch == 2
    run.close()
    assert any(e.startswith("log_metrics: InactiveRunException") for e in run.errors), run.errors


def test_preflight_needs_a_token_for_server_modes(project, compile_plan, monkeypatch):
    monkeypatch.delenv("NEPTUNE_API_TOKEN", raising=False)
    plan = compile_plan(*NEPTUNE, "+tracker.mode=async")
    with pytest.raises(RscaleError) as failed:
        preflight(plan)
    assert "tracker.api_token" in str(failed.value) and "NEPTUNE_API_TOKEN is not set" in str(failed.value)
    assert "export NEPTUNE_API_TOKEN" in failed.value.fix
    with pytest.raises(RscaleError, match="NEPTUNE_API_TOKEN"):
        open_run(plan, "never-starts")


def test_preflight_rejects_a_token_that_is_not_one(project, compile_plan, monkeypatch):
    monkeypatch.setenv("NEPTUNE_API_TOKEN", TOKEN_SENTINEL)
    with pytest.raises(RscaleError) as failed:
        preflight(compile_plan(*NEPTUNE, "+tracker.mode=sync"))
    assert "does not hold a Neptune API token" in str(failed.value)
    assert TOKEN_SENTINEL not in str(failed.value) + str(failed.value.fix)


def test_preflight_fails_fast_when_the_server_does_not_answer(project, compile_plan, monkeypatch):
    address = {"api_address": "http://127.0.0.1:9", "api_key": TOKEN_SENTINEL}
    token = base64.b64encode(json.dumps(address).encode()).decode()
    monkeypatch.setenv("NEPTUNE_API_TOKEN", token)
    plan = compile_plan(*NEPTUNE, "+tracker.mode=async")
    with pytest.raises(RscaleError) as failed:
        preflight(plan)
    message = str(failed.value) + str(failed.value.fix)
    assert "http://127.0.0.1:9" in message and "cannot be reached" in message and "acme/conv" in message
    assert token not in message and TOKEN_SENTINEL not in message
