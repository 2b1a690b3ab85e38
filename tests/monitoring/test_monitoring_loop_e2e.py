"""The loop, end to end at a small size: run, serve, replay live traffic, land outcomes, monitor; then shifted
traffic trips the monitor, and a worse retrain leaves the champion serving."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rscale.cli.app import app
from rscale.cli.main import main  # noqa: F401  (registers every command)
from rscale.compiler.compilation import compile_spec
from rscale.compiler.emit import emit
from rscale.compiler.spec.monitor import MONITOR_ALARM_EXIT_CODE
from rscale.compiler.stack import DuckDBWarehouse
from rscale.paths import predictions_dir

pytestmark = pytest.mark.e2e

SMALL = ["train.max_epochs=2", "model.dim=32", "train.batch_size=128", "evaluate.gate.min_lift=-1.0"]
REQUESTS = (
    "SELECT session_id, ARRAY_AGG(item_id) WITHIN GROUP (ORDER BY event_time) AS items FROM events "
    "WHERE event_type = 'view' AND session_id LIKE '{prefix}%' GROUP BY session_id"
)


def _run(overrides: list[str], spec: str = "specs/recs.yaml"):
    from rscale.stages.runner import run_compiled

    plan = compile_spec(spec, overrides).plans[0]
    return plan, run_compiled(emit(plan) / "plan.json", {})


def _logged(name: str) -> int:
    return sum(len(f.read_text().splitlines()) for f in predictions_dir(name).glob("*.jsonl"))


def _replay(runner: CliRunner, prefix: str) -> int:
    before = _logged("recs")
    result = runner.invoke(app, ["replay", "recs", "--from", REQUESTS.format(prefix=prefix), "--rate", "500"])
    assert result.exit_code == 0, result.output
    sent = int(result.output.split("sent ")[1].split(" ")[0].replace(",", ""))
    deadline = time.monotonic() + 30
    while _logged("recs") < before + sent and time.monotonic() < deadline:  # the server flushes every 0.5 s
        time.sleep(0.2)
    return sent


def test_the_loop_closes(project: Path) -> None:
    from rscale.compiler.stack import load_stack
    from rscale.data.seed import seed_demo
    from rscale.serving.local import LocalDeployer

    seed_demo(DuckDBWarehouse(), sessions=1500, seed=3)
    runner = CliRunner()
    plan, first = _run([*SMALL, "monitor.max_metric_drop=0.5"])
    try:
        assert first.deployment.deployed, first.deployment.reason
        assert first.registration.stage == "production"
        test_hit_rate = first.metrics["hit_rate@10"]

        # live traffic from the same shop: sessions happening now, their next views held back
        seeded = runner.invoke(app, ["seed", "--live", "300", "--seed", "3"])
        assert seeded.exit_code == 0, seeded.output
        assert _replay(runner, "live-3-") >= 250
        assert runner.invoke(app, ["seed", "--land"]).exit_code == 0

        monitored = runner.invoke(app, ["monitor", "recs", "--since", "1h"])
        assert monitored.exit_code == 0, monitored.output
        report = json.loads((project / "build" / "recs" / "monitor.json").read_text())
        assert report["outcomes"] >= 250
        assert report["test_value"] == pytest.approx(test_hit_rate)
        assert abs(report["live_value"] - test_hit_rate) < 0.1, (report["live_value"], test_hit_rate)
        items = next(d for d in report["drift"] if d["name"] == "items")
        assert items["psi"] < 0.2 and items["oov_share"] < 0.1
        assert (project / "build" / "recs" / "monitor.png").read_bytes().startswith(b"\x89PNG")
        assert "data:image/png;base64," in (project / "build" / "recs" / "monitor.html").read_text()

        # the next run's preparation defines `recs_outcomes`: served predictions with the outcomes that landed,
        # for a spec query that asks for them (the demo's own query already reads the new `events`)
        from rscale.stages.runner import prepare
        from rscale.warehouses import connect

        prepare(plan)
        with connect(plan.stack.warehouse, read_only=True) as warehouse:
            assert warehouse.scalar("SELECT COUNT(*) FROM recs_outcomes WHERE outcome IS NOT NULL") == report["outcomes"]

        # shifted traffic: new items the model never saw; the monitor reports drift on `items` and exits 5
        assert runner.invoke(app, ["seed", "--live", "300", "--seed", "3", "--shift"]).exit_code == 0
        _replay(runner, "live-3s-")
        assert runner.invoke(app, ["seed", "--land"]).exit_code == 0
        shifted = runner.invoke(app, ["monitor", "recs", "--since", "1h"])
        assert shifted.exit_code == MONITOR_ALARM_EXIT_CODE, shifted.output
        crossed = {c["check"] for c in json.loads((project / "build" / "recs" / "monitor.json").read_text())["checks"] if c["crossed"]}
        assert "oov:items" in crossed, crossed
        assert "crossed:" in shifted.output and "items" in shifted.output

    finally:
        LocalDeployer(load_stack("local")).undeploy("recs")


def test_a_worse_challenger_is_registered_but_production_keeps_serving(project: Path) -> None:
    from rscale.compiler.stack import load_stack
    from rscale.data.seed import seed_demo
    from rscale.serving.endpoint import read_state
    from rscale.serving.local import LocalDeployer

    seed_demo(DuckDBWarehouse(), sessions=1500, seed=5)
    # the majority baseline and a 2% margin, whatever the spec gates on: this test is about the champion
    small = ["train.max_epochs=3", "train.batch_size=128", "evaluate.baseline=majority"]
    # the champion: all inputs; a margin of 100% promotes it whatever production held before
    _, champion = _run([*small, "evaluate.gate.min_lift=-1.0"], "specs/conversion.yaml")
    try:
        assert champion.registration.stage == "production" and champion.deployment.deployed
        served = read_state("conversion")["model_version"]
        # the challenger sees the device only: it beats the majority baseline but not the champion (margin 2%)
        only_device = "features.inputs=[{name: device, type: categorical}]"
        _, challenger = _run([*small, only_device, "evaluate.gate.min_lift=0.02"], "specs/conversion.yaml")
        decision = challenger.gate
        assert challenger.baseline_metrics["auc"] < challenger.metrics["auc"] < champion.metrics["auc"]
        assert decision.passed is False and "champion conversion:" in decision.reason
        assert f"{challenger.metrics['auc']:.4f}" in decision.reason  # both figures, the champion's re-scored
        assert "keep the champion in production" in decision.reason
        assert challenger.registration.stage is None  # registered, not promoted
        assert challenger.deployment.deployed is False
        assert read_state("conversion")["model_version"] == served
    finally:
        LocalDeployer(load_stack("local")).undeploy("conversion")
