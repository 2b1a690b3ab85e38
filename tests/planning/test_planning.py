"""`rs plan` without ZenML runs: the steps read from the pipeline, shadow cache keys, predictions from run
records, the spec diff, costs from the price tables, and the command's output and imports."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rscale.compiler.compilation import compile_spec
from rscale.compiler.stack import DuckDBWarehouse, load_prices, load_stack, price_table
from rscale.planning import plan_runs
from rscale.planning.cost import serving_cost, training_cost
from rscale.planning.history import RunRecord, StepRecord, TrainingRecord, hardware_label, runs_file
from rscale.planning.predict import key_changes, predict_steps
from rscale.planning.steps import call_of, pipeline_steps, step_keys

STEPS = ["load_data", "train_model", "evaluate_model", "register_model", "deploy_model"]


@pytest.fixture
def seeded(project: Path) -> Path:
    from rscale.data.seed import seed_demo

    seed_demo(DuckDBWarehouse(), sessions=560, seed=41)
    return project


def _plan(*overrides: str, stack: str = "local"):
    return compile_spec("specs/recs.yaml", list(overrides), stack=stack, offline=True).plans[0]


def _record(plan, fingerprint: str, name: str = "r1", training: TrainingRecord | None = None) -> RunRecord:
    """The record `rs run` writes, for a run whose steps all completed (the e2e test writes real ones)."""
    keys = step_keys(plan, fingerprint)
    return RunRecord(
        recorded="2026-12-01T00:00:00Z", run_id=name, run_name=name, plan_hash=plan.hash,
        plan=plan.model_dump(mode="json", by_alias=True), fingerprint=fingerprint, stack=plan.stack.name,
        steps={n: StepRecord(key=k.key, status="completed", parts=k.parts) for n, k in keys.items()},
        training=training,
    )


def test_steps_inputs_and_parameters_are_read_from_the_pipeline_module(repo: Path) -> None:
    assert [c.name for c in pipeline_steps()] == STEPS
    assert call_of("load_data").inputs == {}
    assert set(call_of("load_data").params) == {"checks", "data", "warehouse", "fingerprint", "split", "seed", "id_column"}
    assert call_of("train_model").inputs == {"examples": ("load_data", 0), "check_report": ("load_data", 1)}
    assert call_of("load_data").param_path("seed") == ("train", "seed")
    assert call_of("load_data").param_path("checks") == ("checks",)
    assert call_of("train_model").param_path("plan") == ()
    deploy = call_of("deploy_model")
    assert deploy.cache is False and deploy.only_if == "deploy"
    assert all(c.cache for c in pipeline_steps() if c.name != "deploy_model")


def test_keys_change_only_downstream_of_what_changed(project: Path) -> None:
    base = step_keys(_plan(), "fp1")
    lr = step_keys(_plan("train.lr=0.01"), "fp1")
    assert [n for n in STEPS if base[n].key != lr[n].key] == STEPS[1:]
    seed = step_keys(_plan("train.seed=8"), "fp1")
    assert [n for n in STEPS if base[n].key != seed[n].key] == STEPS  # the load step splits, with the seed
    data = step_keys(_plan(), "fp2")
    assert all(base[n].key != data[n].key for n in STEPS)
    assert "deploy_model" not in step_keys(_plan(), "fp1", deploy=False)
    assert set(step_keys(_plan(), None)["load_data"].key) == {"?"}


def test_predictions_from_run_records_say_why(project: Path) -> None:
    old, new = _plan(), _plan("train.lr=0.01")
    runs = [_record(old, "fp1", "first")]
    steps = {s.name: s for s in predict_steps(step_keys(new, "fp1"), new.model_dump(mode="json"), runs)}
    assert [n for n in STEPS if steps[n].action == "run"] == STEPS[1:]
    assert steps["train_model"].reasons == ["`plan` changed: overrides, train.lr"]
    assert "inputs `model_package`, `training` from train_model, which runs" in steps["evaluate_model"].reasons
    assert steps["load_data"].reasons == ["same inputs as the last run"]
    # ZenML finds any earlier run with the key, not only the last: back to the first lr, training is reused
    runs.append(_record(new, "fp1", "second"))
    again = {s.name: s for s in predict_steps(step_keys(old, "fp1"), old.model_dump(mode="json"), runs)}
    assert again["train_model"].action == "reuse" and again["train_model"].reasons == ["same inputs as run first"]
    fresh = predict_steps(step_keys(old, "fp9"), old.model_dump(mode="json"), runs)
    assert fresh[0].reasons == ["data fingerprint changed (the data behind the query changed)"]
    assert predict_steps(step_keys(old, "fp1"), old.model_dump(mode="json"), [])[0].reasons == [
        "no earlier run of this use case"
    ]


def test_a_sweep_predicts_shared_data_steps_and_costs_each_member(seeded: Path) -> None:
    plans = compile_spec("specs/recs.yaml", ["train.lr=0.001,0.01"], offline=True).plans
    report = plan_runs(plans)
    first, second = report.members
    assert {s.action for s in first.steps} == {"run"} and "deploy_model" not in [s.name for s in first.steps]
    shared = {s.name: s for s in second.steps}
    assert shared["load_data"].action == "reuse"
    assert shared["load_data"].reasons == [f"computed by member 1 ({plans[0].hash}) of this sweep"]
    assert shared["train_model"].action == "run"
    assert report.endpoint.change.startswith("none")


def test_spec_diff_lists_changed_added_and_removed_keys() -> None:
    changes = key_changes({"train": {"lr": 1, "gpus": 0}, "model": {"dim": 8}}, {"train": {"lr": 2}, "extra": [1, 2]})
    assert [(c.key, c.change) for c in changes] == [
        ("extra", "added"), ("model.dim", "removed"), ("train.gpus", "removed"), ("train.lr", "changed")
    ]


def test_the_aws_price_table_is_dated_and_kept_out_of_plans(project: Path) -> None:
    stack = load_stack("aws")
    table = price_table(stack)
    assert table is not None and table.as_of.isoformat() == "2025-01-15" and table.region == "us-east-1"
    for instance in stack.step_operator.instance_types.values():  # type: ignore[union-attr]
        assert instance in table.training_per_hour
    plan = _plan(stack="aws")
    assert "prices" not in plan.model_dump(mode="json") and "prices" not in plan.to_json()
    assert plan.hash == _plan(stack="aws").hash


def test_costs_are_instance_hours_and_a_monthly_range(project: Path) -> None:
    table = load_prices(Path("stacks/prices/aws-us-east-1.yaml"))
    plan = _plan("train.gpus=4", "train.max_epochs=10", "serving.tier=autoscaling", "serving.min_instances=1",
                 "serving.max_instances=3", stack="aws")
    measured = TrainingRecord(hardware=hardware_label(plan.hardware), samples_per_second=1000.0, train_rows=36_000)
    estimate = training_cost(plan, table, [_record(plan, "fp", training=measured)], reused=False)
    startup = table.assumptions.training_startup_minutes / 60
    assert estimate.instance == "ml.g5.12xlarge"
    assert estimate.hours == pytest.approx(36_000 * 10 / 1000 / 3600 + startup)
    assert estimate.low == pytest.approx(table.training_per_hour["ml.g5.12xlarge"] * estimate.hours)
    unmeasured = training_cost(plan, table, [], reused=False)
    assert unmeasured.hours is None and unmeasured.high == pytest.approx(7.09 * (24 + startup))
    assert "no measurement" in unmeasured.assumptions[0]
    serving = serving_cost(plan.serving, table)
    hourly = table.hosting_per_hour["ml.m5.large"] * 730
    assert (serving.low, serving.high) == (pytest.approx(hourly), pytest.approx(3 * hourly))
    serverless = _plan("serving.tier=serverless", "serving.memory_mb=2048", stack="aws").serving
    cost = serving_cost(serverless, table, requests_per_month=1_000_000)
    compute = 1_000_000 * 0.1 * 2 * table.serverless_gb_second  # type: ignore[operator]
    data = 1_000_000 * 2 / 1024 / 1024 * table.data_per_gb  # type: ignore[operator]
    assert cost.low == 0.0 and cost.high == pytest.approx(compute + data)



def test_training_cost_derives_left_out_epochs_from_the_measured_rows(project: Path) -> None:
    """A spec without train.max_epochs trains for epochs derived from its row count; the estimate uses the same."""
    table = load_prices(Path("stacks/prices/aws-us-east-1.yaml"))
    plan = _plan("train.gpus=1", "train.max_epochs=null", "train.batch_size=256", stack="aws")
    assert plan.train.max_epochs is None
    measured = TrainingRecord(hardware=hardware_label(plan.hardware), samples_per_second=1000.0, train_rows=36_000)
    estimate = training_cost(plan, table, [_record(plan, "fp", training=measured)], reused=False)
    epochs = plan.train.settings(36_000, None).max_epochs  # 141 steps an epoch: 29 epochs for about 4000 steps
    assert epochs == 29
    startup = table.assumptions.training_startup_minutes / 60
    assert estimate.hours == pytest.approx(36_000 * epochs / 1000 / 3600 + startup)
    assert f"at most {epochs} epochs" in estimate.assumptions[0]

def _cli(*args: str):
    from rscale.cli import main as _commands  # noqa: F401
    from rscale.cli.app import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_plan_on_aws_prints_instance_hours_range_and_table_date(
    seeded: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in runpy.run_path(str(repo / "tests" / "stacks" / "aws_env.py"))["AWS_ENV"].items():
        monkeypatch.setenv(key, value)
    result = _cli("plan", "specs/recs.yaml", "--stack", "aws", "train.gpus=4", "serving.tier=autoscaling")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "training: up to $170.75 on ml.g5.12xlarge, hours unknown" in out
    assert "no measurement" in out and "at most 24 h" in out
    assert "serving: $83.95 to $167.90 a month" in out and "1 to 2 x ml.m5.large" in out
    assert "price table as of 2025-01-15, us-east-1" in out
    assert "prices are for us-east-1, the stack serves in eu-west-1" in out
    assert "Endpoint: create" in out
    as_json = json.loads(_cli("plan", "specs/recs.yaml", "--stack", "aws", "train.gpus=4", "--json").stdout)
    assert as_json["members"][0]["training"]["instance"] == "ml.g5.12xlarge"
    assert as_json["prices"]["as_of"] == "2025-01-15"
    assert [s["name"] for s in as_json["members"][0]["steps"]] == STEPS


def test_plan_imports_neither_torch_nor_zenml(seeded: Path, repo: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from rscale.cli.main import app\n"
        "result = CliRunner().invoke(app, ['plan', 'specs/recs.yaml', '--json'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'zenml', 'lightning', 'pytorch_lightning', 'mlflow') if m in sys.modules))\n"
    )
    env = {**os.environ, "RS_PROJECT_DIR": str(seeded)}
    done = subprocess.run([sys.executable, "-c", code], cwd=seeded, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_run_records_are_read_back_and_torn_lines_skipped(project: Path) -> None:
    plan = _plan()
    path = runs_file(plan.name)
    path.write_text(_record(plan, "fp").model_dump_json() + "\n" + '{"recorded": "torn')
    from rscale.planning.history import load_runs

    assert [r.run_name for r in load_runs(plan.name)] == ["r1"]


def test_a_team_price_table_overrides_the_stacks_and_a_bad_one_says_where(seeded: Path) -> None:
    Path("ours.yaml").write_text(
        "as_of: 2026-11-30\nsource: our negotiated rates\nregion: eu-west-1\n"
        "hosting_per_hour: {ml.m5.large: 0.1}\n"
    )
    args = ["plan", "specs/recs.yaml", "--stack", "aws", "serving.tier=autoscaling", "--prices", "ours.yaml"]
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "price table as of 2026-11-30, eu-west-1" in out and "serving: $73.00 to $146.00 a month" in out
    assert "no training price for ml.m5.xlarge in the price table" in out
    Path("ours.yaml").write_text("as_of: 2026-11-30\nsource: ours\nhosting_per_hour: {ml.m5.large: cheap}\n")
    bad = _cli(*args)
    assert bad.exit_code == 2
    assert "ours.yaml:3" in bad.output and "hosting_per_hour" in bad.output
