"""`rs monitor` and `rs replay` say what is missing and how to get it, without a traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rscale.cli.app import app
from rscale.cli.main import main  # noqa: F401  (registers every command)
from rscale.compiler.compilation import compile_spec
from rscale.compiler.emit import emit


def test_monitor_and_replay_need_a_compiled_plan_and_an_endpoint(project: Path) -> None:
    runner = CliRunner()
    monitored = runner.invoke(app, ["monitor", "recs"])
    assert monitored.exit_code == 2
    assert "no compiled plan for `recs`" in monitored.output and "rs compile specs/recs.yaml" in monitored.output
    emit(compile_spec("specs/recs.yaml", offline=True).plans[0])
    replayed = runner.invoke(app, ["replay", "recs", "--from", "events"])
    assert replayed.exit_code == 2 and "rs serve recs" in replayed.output
    bad_window = runner.invoke(app, ["monitor", "recs", "--since", "a week"])
    assert bad_window.exit_code == 2 and "not a duration" in bad_window.output
    nothing = runner.invoke(app, ["monitor", "recs", "--since", "1h"])
    assert nothing.exit_code == 2 and "nothing to monitor" in nothing.output and "rs run specs/recs.yaml" in nothing.output


def test_rs_run_says_production_keeps_serving_when_the_champion_wins(capsys) -> None:
    import pytest
    import typer

    from rscale.cli.compile import gate_blocked
    from rscale.errors import EXIT_GATE_BLOCKED
    from rscale.models.champion import compare
    from rscale.stages.runner import RunOutcome

    class Gate:
        metric = "auc"
        min_lift = 0.02

    decision = compare("conversion:1", 0.83, {"auc": 0.54}, Gate())
    outcome = RunOutcome(
        name="conversion", plan_hash="h", run_id="r", run_name="n", seconds=1.0, fingerprint="f",
        gate={"passed": False, "metric": "auc", "reason": decision.reason, "model_value": None, "baseline_value": None, "required_value": None},
        training={"package_dir": "package"}, champion=decision,
    )
    with pytest.raises(typer.Exit) as exited:
        gate_blocked(outcome, Path("build/conversion"))
    assert exited.value.exit_code == EXIT_GATE_BLOCKED
    said = " ".join(capsys.readouterr().err.split())
    assert "production keeps serving conversion:1" in said and "0.5400" in said and "0.8300" in said
