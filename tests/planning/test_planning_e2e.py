"""`rs plan`'s step predictions checked against what real ZenML runs then do (step status `cached` or
`completed`), on specs/recs.yaml at a tiny size: unchanged spec, a changed `train.lr`, a changed table."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rscale.compiler.compilation import compile_spec
from rscale.compiler.emit import emit
from rscale.compiler.stack import DuckDBWarehouse

pytestmark = pytest.mark.e2e

# sizes and a seed no other test uses, so ZenML's store (shared by the test session) has none of these keys
TINY = ["train.max_epochs=1", "model.dim=8", "train.batch_size=128", "evaluate.gate.min_lift=-1.0", "train.seed=29"]


def _plan(overrides: list[str]):
    from rscale.planning import plan_runs

    plan = compile_spec("specs/recs.yaml", overrides, offline=True).plans[0]
    return plan, plan_runs([plan])


def _run(plan, deploy: bool = True):
    from zenml.client import Client

    from rscale.stages.runner import run_compiled

    outcome = run_compiled(emit(plan) / "plan.json", {}, deploy=deploy)
    run = Client().get_pipeline_run(outcome.run_id)
    return outcome, {name: str(step.status.value) for name, step in run.steps.items()}


def _predicted(report) -> dict[str, str]:
    return {s.name: s.action for s in report.members[0].steps}


def _expected_status(action: str) -> str:
    return {"reuse": "cached", "run": "completed"}[action]


def test_predictions_match_real_runs(project: Path, repo: Path) -> None:
    from rscale.data.seed import seed_demo
    from rscale.serving.endpoint import read_state
    from rscale.serving.local import LocalDeployer
    from rscale.warehouses import connect

    seed_demo(DuckDBWarehouse(), sessions=560, seed=29)
    plan, report = _plan(TINY)
    assert set(_predicted(report).values()) == {"run"} and report.endpoint.change == "create"
    try:
        _, statuses = _run(plan)
        assert set(statuses.values()) == {"completed"}
        served = read_state("recs")

        # (a) unchanged spec: every cacheable step reused, the endpoint left alone
        plan, report = _plan(TINY)
        predicted = _predicted(report)
        assert predicted == {**{name: "reuse" for name in predicted}, "deploy_model": "run"}  # deploy is never cached
        assert report.endpoint.change == "no-op"
        assert report.members[0].training.low == 0.0 and report.spec_diff == []
        outcome, statuses = _run(plan)
        assert statuses == {name: _expected_status(action) for name, action in predicted.items()}
        assert outcome.deployment.deployed and read_state("recs") == served  # the same server process, untouched

        # (b) train.lr changed: only train, evaluate, register (and deploy) run
        plan, report = _plan([*TINY, "train.lr=0.02"])
        predicted = _predicted(report)
        assert [n for n, a in predicted.items() if a == "run"] == [
            "train_model", "evaluate_model", "register_model", "deploy_model"
        ]
        train = next(s for s in report.members[0].steps if s.name == "train_model")
        assert any("train.lr" in r for r in train.reasons), train.reasons
        assert [c.key for c in report.spec_diff] == ["train.lr"]
        assert report.endpoint.change == "update in place"
        _, statuses = _run(plan, deploy=False)  # a restart of the endpoint is not what this checks
        del predicted["deploy_model"]
        assert statuses == {name: _expected_status(action) for name, action in predicted.items()}

        # (c) the table changed: every step runs, because the data fingerprint changed
        with connect(DuckDBWarehouse()) as warehouse:
            warehouse.execute("DELETE FROM events WHERE session_id = (SELECT MIN(session_id) FROM events)")
        plan, report = _plan([*TINY, "train.lr=0.02"])
        predicted = _predicted(report)
        assert set(predicted.values()) == {"run"}
        check = next(s for s in report.members[0].steps if s.name == "load_data")
        assert check.reasons == ["data fingerprint changed (the data behind the query changed)"]
        outcome, statuses = _run(plan, deploy=False)
        del predicted["deploy_model"]
        assert statuses == {name: _expected_status(action) for name, action in predicted.items()}

        # a run deleted from ZenML's store takes its cache entries with it: the plan reads the store and says so
        from zenml.client import Client

        _, report = _plan([*TINY, "train.lr=0.02"])
        assert {s.action for s in report.members[0].steps if s.name != "deploy_model"} == {"reuse"}
        Client().delete_pipeline_run(outcome.run_id)
        _, report = _plan([*TINY, "train.lr=0.02"])
        gone = {s.name: s for s in report.members[0].steps}
        assert gone["load_data"].action == "run"
        assert "is no longer in ZenML's store" in gone["load_data"].reasons[0]

        # the done-when check of issue 17, now that this use case has a measured speed: instance, hours, range, date
        from rscale.cli import main as _commands  # noqa: F401
        from rscale.cli.app import app

        aws = runpy.run_path(str(repo / "tests" / "stacks" / "aws_env.py"))["AWS_ENV"]
        result = CliRunner(env=aws).invoke(app, ["plan", "specs/recs.yaml", "--stack", "aws", "train.gpus=4",
                                                 "serving.tier=autoscaling"])
        out = " ".join(result.stdout.split())
        assert result.exit_code == 0, result.output
        assert re.search(r"training: \$[0-9.]+ on ml\.g5\.12xlarge, [0-9.]+ h", out), out
        assert "measured on this machine (cpu x1), not on ml.g5.12xlarge (gpu x4)" in out
        assert "serving: $83.95 to $167.90 a month" in out and "price table as of 2025-01-15" in out
    finally:
        LocalDeployer().undeploy("recs")
