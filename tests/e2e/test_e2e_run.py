"""Whole ZenML runs of each spec at a small size: seed -> compile -> run -> live endpoint -> feedback."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rscale.compiler.compilation import compile_spec
from rscale.compiler.emit import emit
from rscale.compiler.stack import DuckDBWarehouse

pytestmark = pytest.mark.e2e

SMALL = {
    "recs": ["train.max_epochs=2", "model.dim=16", "train.batch_size=128"],
    "conversion": ["train.max_epochs=2", "train.batch_size=128"],
}


@pytest.fixture
def seeded(project: Path) -> Path:
    from rscale.data.seed import seed_demo

    seed_demo(DuckDBWarehouse(), sessions=1500, seed=3)
    return project


def _run(spec: str, overrides: list[str]):
    from rscale.stages.runner import run_compiled

    plan = compile_spec(spec, overrides).plans[0]
    build = emit(plan)
    return plan, run_compiled(build / "plan.json", {})


def _stop(name: str) -> None:
    from rscale.compiler.stack import load_stack
    from rscale.serving.local import LocalDeployer

    LocalDeployer(load_stack("local")).undeploy(name)


@pytest.mark.parametrize("name", ["recs", "conversion"])
def test_spec_runs_end_to_end_and_serves(seeded: Path, name: str) -> None:
    # a gate that any trained model passes, so this run always deploys; the gate itself is tested below
    plan, outcome = _run(f"specs/{name}.yaml", [*SMALL[name], "evaluate.gate.min_lift=-1.0"])
    try:
        assert set(outcome.metrics) == set(plan.evaluate.metrics)
        assert set(outcome.baseline_metrics) == set(plan.evaluate.metrics)
        assert outcome.gate.passed is True
        assert outcome.training.epochs_run >= 1
        assert outcome.registration.stage == "production"
        deployment = outcome.deployment
        assert deployment.deployed, deployment.reason
        url = deployment.endpoint.url
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/ping").status_code == 200
        answer = httpx.post(f"{url}/invocations", json=deployment.example_request)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"]
        bad = httpx.post(f"{url}/invocations", content=b"{not json", headers={"content-type": "application/json"})
        assert 400 <= bad.status_code < 500
    finally:
        _stop(name)  # the server flushes its prediction log on shutdown
    # every prediction is logged for feedback (the deploy step's smoke request and ours) ...
    logs = list((seeded / ".rs" / "predictions" / name).glob("*.jsonl"))
    lines = [json.loads(line) for f in logs for line in f.read_text().splitlines()]
    assert len(lines) == 2 and {line["model_version"] for line in lines} == {deployment.endpoint.model_version}
    # ... and the next run's preparation ingests them into the warehouse, once
    from rscale.stages.runner import prepare
    from rscale.warehouses import connect

    prepare(plan)
    prepare(plan)
    with connect(plan.stack.warehouse, read_only=True) as warehouse:
        assert warehouse.scalar(f"SELECT COUNT(*) FROM {name}_predictions") == 2
    # the tracked run holds the same final metrics, the gate decision and a link to the package
    from mlflow.tracking import MlflowClient

    tracked = MlflowClient(f"sqlite:///{seeded / '.rs' / 'mlflow.db'}").get_run(outcome.training.tracker_run_id)
    for metric, value in outcome.metrics.items():
        assert tracked.data.metrics[f"test_{metric.replace('@', '_at_')}"] == pytest.approx(value)
    assert tracked.data.tags["rscale.gate"] == "passed"
    assert tracked.data.tags["rscale.model_version"].startswith(f"{name}:")
    assert len(outcome.training.history) == outcome.training.epochs_run


def test_gate_blocks_a_model_that_does_not_beat_the_baseline(seeded: Path) -> None:
    # an impossible lift: the model cannot be 10x better than the baseline, so nothing is deployed
    _plan, outcome = _run("specs/conversion.yaml", [*SMALL["conversion"], "evaluate.gate.min_lift=9.0"])
    assert outcome.gate.passed is False
    assert outcome.deployment.deployed is False
    assert "gate" in outcome.deployment.reason
    assert outcome.registration.stage is None
    # the same run from the CLI: every step but deploy is reused from the cache and says so with its result
    # (issue 14, stumble 6), and a blocked gate exits with its own code and what to try (stumble 4)
    from typer.testing import CliRunner

    from rscale.cli.app import app
    from rscale.cli.main import main  # noqa: F401  (registers every command)

    again = CliRunner().invoke(app, ["run", "specs/conversion.yaml", *SMALL["conversion"], "evaluate.gate.min_lift=9.0"])
    assert again.exit_code == 4, again.output
    text = " ".join(again.output.split())
    assert "✓ check 4/4 checks passed (cached)" in text
    assert "✓ load 1,500 rows, 9 columns (cached)" in text
    assert "✓ split train 1,200 / validation 150 / test 150 (cached)" in text
    assert f"✓ train {outcome.training.epochs_run} epochs, best epoch {outcome.training.best_epoch} (cached)" in text
    assert "the gate blocked this model" in text and "train.max_epochs=" in text


def test_a_failing_check_stops_the_run_before_the_query_with_exit_3(seeded: Path) -> None:
    # the checks and the query share one step and one warehouse session: a failing check still stops the run
    # with its own message and exit code, before anything is loaded or trained; a passing one is then not
    # served the failed run's result
    from typer.testing import CliRunner

    from rscale.cli.app import app
    from rscale.cli.main import main  # noqa: F401  (registers every command)

    failed = CliRunner().invoke(app, ["run", "specs/conversion.yaml", *SMALL["conversion"], "checks.0.min=1000000"])
    assert failed.exit_code == 3, failed.output
    text = " ".join(failed.output.split())
    assert "data checks failed, so nothing was trained" in text and "row_count_0 (row_count)" in text
    assert "✓ load" not in text and "✓ train" not in text


def test_changed_table_is_never_served_from_cache(seeded: Path) -> None:
    from rscale.stages.runner import prepare
    from rscale.warehouses import connect

    plan = compile_spec("specs/conversion.yaml", SMALL["conversion"]).plans[0]
    before = prepare(plan)
    assert prepare(plan) == before  # nothing changed: same fingerprint, so the data steps may be cached
    with connect(plan.stack.warehouse) as warehouse:
        warehouse.scalar("UPDATE events SET price = price + 1 WHERE session_id = (SELECT MIN(session_id) FROM events)")
    assert prepare(plan) != before


def test_rs_compile_then_rs_run_as_the_readme_says(seeded: Path) -> None:
    from typer.testing import CliRunner

    from rscale.cli.app import app
    from rscale.cli.main import main  # noqa: F401  (registers every command)

    runner = CliRunner()
    compiled = runner.invoke(app, ["compile", "specs/conversion.yaml", *SMALL["conversion"], "evaluate.gate.min_lift=-1.0"])
    assert compiled.exit_code == 0, compiled.output
    assert (seeded / "build" / "conversion" / "pipeline.py").exists()
    try:
        ran = runner.invoke(app, ["run"])  # no spec: runs what was compiled last
        assert ran.exit_code == 0, ran.output
        text = " ".join(ran.output.split())
        assert "gate passed" in text and "endpoint: http://127.0.0.1:" in text and "rs predict conversion" in text
        report = (seeded / "build" / "conversion" / "report.html").read_text()
        assert "data:image/png;base64," in report and "auc" in report
        assert (seeded / "build" / "conversion" / "report.png").read_bytes().startswith(b"\x89PNG")
    finally:
        _stop("conversion")
