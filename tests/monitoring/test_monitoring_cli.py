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
