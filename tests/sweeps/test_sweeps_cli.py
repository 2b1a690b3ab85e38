"""Sweeps without a pipeline run: expansion and errors through `rs compile -m`, resume bookkeeping after a kill,
the --max-parallel guard, and the report (ranking, CSV, HTML, best.yaml). Pipeline runs are in test_sweeps_e2e."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rscale.compiler.compilation import compile_spec
from rscale.compiler.stack import DuckDBWarehouse
from rscale.errors import ConfigurationError


def _cli(*args: str):
    from rscale.cli import main as _commands  # noqa: F401  (registers every command)
    from rscale.cli.app import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _flat(text: str) -> str:
    return " ".join(text.split())  # the console wraps long lines


def test_compile_m_lists_members_of_a_grid_with_range_and_runs_nothing(project: Path) -> None:
    result = _cli("compile", "specs/recs.yaml", "train.max_epochs=1", "-m", "train.lr=1e-3,3e-3",
                  "model.dim=range(32,129,32)", "--offline")
    assert result.exit_code == 0, result.output
    (folder,) = (project / "build" / "recs" / "sweeps").iterdir()
    record = json.loads((folder / "sweep.json").read_text())
    assert [m["swept"] for m in record["members"]] == [
        {"train.lr": lr, "model.dim": dim} for lr in (0.001, 0.003) for dim in (32, 64, 96, 128)
    ]
    assert record["overrides"] == ["train.max_epochs=1", "train.lr=1e-3,3e-3", "model.dim=range(32,129,32)"]
    assert f"sweep {folder.name}: 8 members of recs" in _flat(result.output)
    for member in record["members"]:
        assert member["hash"] in result.output
        assert (folder / "members" / member["hash"] / "pipeline.py").exists()
    assert "every member: train.max_epochs=1" in result.output
    assert not (folder / "state.json").exists()  # shown, not run


def test_sweeps_add_delete_and_choose_keys_like_single_runs() -> None:
    plans = compile_spec(
        "specs/recs.yaml", ["~train.lr", "+model.dropout=0.2,0.3", "model.encoder=choice(gru,mean)"],
        offline=True,
    ).plans
    assert [(p.model.dropout, p.model.encoder) for p in plans] == [(0.2, "gru"), (0.2, "mean"), (0.3, "gru"), (0.3, "mean")]
    assert all(p.train.lr == 1e-3 for p in plans)  # the spec says 0.003; deleted, the default is back
    assert plans[0].overrides == ("~train.lr", "+model.dropout=0.2", "model.encoder=gru")
    assert plans[0].swept == {"model.dropout": 0.2, "model.encoder": "gru"}


def test_bad_member_values_are_spec_errors_naming_the_member_override(project: Path) -> None:
    result = _cli("compile", "specs/recs.yaml", "-m", "train.lr=1e-3,abc", "model.encoder=choice(gru,lstm)", "--offline")
    assert result.exit_code == 2
    text = _flat(result.output)
    assert "error at `train.lr`: expected a number, got `abc` from override: train.lr=abc" in text
    assert "error at `model.encoder`: `lstm` is not one of the allowed values from override: model.encoder=lstm" in text
    assert "fix: allowed: gru, sasrec, mean" in text
    assert not (project / "build").exists()


def test_a_sweep_without_m_is_refused_with_the_fix(project: Path) -> None:
    result = _cli("compile", "specs/recs.yaml", "train.lr=1e-3,3e-3", "--offline")
    assert result.exit_code == 2
    assert "these overrides describe a sweep" in result.output and "add -m (--multirun)" in result.output


def test_resume_with_another_sweeps_id_runs_nothing(project: Path) -> None:
    from rscale.sweeps import run_sweep

    compiled = compile_spec("specs/recs.yaml", ["train.lr=1e-3,3e-3"], offline=True)
    with pytest.raises(ConfigurationError, match="does not match") as caught:
        run_sweep(compiled, resume="0123456789")
    assert "build/*/sweeps/0123456789/sweep.json" in (caught.value.fix or "")
    result = _cli("run", "--resume", "0123456789")
    assert result.exit_code == 2 and "no sweep 0123456789" in result.output


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the sweep catches it, so the state on disk is what a kill leaves."""


def _fake_outcome(plan_file: str | Path, hit_rate: float):
    from rscale.compiler.plan import Plan
    from rscale.stages.runner import RunOutcome

    plan = Plan.read(plan_file)
    return RunOutcome(
        name=plan.name, plan_hash=plan.hash, run_id=f"run-{plan.hash}", run_name=f"recs-{plan.hash[:8]}", seconds=1.5,
        fingerprint="f", swept=plan.swept, metrics={"hit_rate@10": hit_rate, "mrr@10": hit_rate / 2},
        gate={"passed": hit_rate > 0.1, "metric": "hit_rate@10", "model_value": hit_rate, "baseline_value": None,
              "required_value": None, "reason": "fake"},
        training={"package_dir": str(plan_file), "tracker_run_id": f"mlflow-{plan.hash}"},
    )


def test_killed_sweep_resumed_by_id_runs_only_the_member_that_was_running(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rscale.data.seed import seed_demo
    from rscale.stages import runner

    seed_demo(DuckDBWarehouse(), sessions=600, seed=1)
    overrides = ["train.max_epochs=1", "-m", "train.lr=1e-3,3e-3"]
    compiled = compile_spec("specs/recs.yaml", ["train.max_epochs=1", "train.lr=1e-3,3e-3"], offline=True)
    first, second = (p.hash for p in compiled.plans)
    calls: list[str] = []
    seen_at_kill: dict[str, str] = {}

    def killed_during_second(plan_file, options, fingerprint, deploy=True):
        assert deploy is False  # sweep members never deploy
        calls.append(Path(plan_file).parent.name)
        if len(calls) == 2:
            state = json.loads(Path(plan_file).parents[2].joinpath("state.json").read_text())
            seen_at_kill.update({h: m["status"] for h, m in state["members"].items()})
            raise Killed
        return _fake_outcome(plan_file, 0.2)

    monkeypatch.setattr(runner, "run_compiled", killed_during_second)
    with pytest.raises(Killed):
        _cli("run", "specs/recs.yaml", *overrides)
    assert seen_at_kill == {first: "done", second: "running"}

    calls.clear()
    monkeypatch.setattr(runner, "run_compiled", lambda plan_file, *a, **k: calls.append(
        Path(plan_file).parent.name) or _fake_outcome(plan_file, 0.3))
    (folder,) = (project / "build" / "recs" / "sweeps").iterdir()
    result = _cli("run", "--resume", folder.name)  # the sweep's record has the spec and the overrides
    assert result.exit_code == 0, result.output
    assert calls == [second]
    assert "2 members, 1 done, 1 to run" in result.output
    rows = (folder / "results.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == [second, first]  # 0.3 beats 0.2
    assert f"plan {second}" in (folder / "best.yaml").read_text()


def test_max_parallel_refuses_to_share_a_local_gpu(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = (project / "stacks" / "local.yaml").read_text()
    (project / "stacks" / "gpubox.yaml").write_text(local.replace("name: local", "name: gpubox").replace("gpus: 0", "gpus: 1"))
    monkeypatch.setenv("RS_STACKS_DIR", str(project / "stacks"))
    result = _cli("run", "specs/recs.yaml", "train.gpus=1", "--stack", "gpubox", "-m", "train.lr=1e-3,3e-3",
                  "--max-parallel", "2", "--offline")
    assert result.exit_code == 2
    text = _flat(result.output)
    assert "--max-parallel 2 would train 2 members at once on this machine's GPUs" in text
    assert "drop --max-parallel" in text


def test_report_ranks_lower_is_better_metrics_ascending_and_unfinished_members_last(project: Path) -> None:
    from rscale.sweeps import emit_sweep
    from rscale.sweeps.report import ranked, write_sweep_report

    compiled = compile_spec("specs/recs.yaml", ["train.lr=1e-3,2e-3,3e-3"], offline=True)
    sweep = emit_sweep(compiled, overrides=["train.lr=1e-3,2e-3,3e-3"])
    a, b, c = (m.plan.hash for m in sweep.members)
    state = {"members": {
        a: {"status": "done", "outcome": _fake_outcome(sweep.members[0].folder / "plan.json", 0.1).model_dump()},
        b: {"status": "failed", "error": "exit code 1: boom"},
        c: {"status": "done", "outcome": _fake_outcome(sweep.members[2].folder / "plan.json", 0.4).model_dump()},
    }}
    table, metric = ranked(sweep, state)
    assert metric == "hit_rate@10" and [r["member"] for r in table] == [c, a, b]

    write_sweep_report(sweep, state)
    csv_rows = (sweep.folder / "results.csv").read_text().splitlines()
    assert csv_rows[3].startswith(f"{b},failed,0.002,") and "exit code 1: boom" in csv_rows[3]
    best = (sweep.folder / "best.yaml").read_text()
    assert "train.lr=0.003" in best and compile_spec(sweep.folder / "best.yaml", offline=True).plans[0].hash == c
    page = (sweep.folder / "results.html").read_text()
    assert "rs run specs/recs.yaml -m train.lr=1e-3,2e-3,3e-3" in page and page.count("<tr>") == 4

    # were the gate metric an error (lower is better), the same numbers would rank the other way round
    plan = sweep.members[0].plan
    gate = plan.evaluate.gate.model_copy(update={"metric": "rmse"})
    sweep.members[0].plan = plan.model_copy(
        update={"evaluate": plan.evaluate.model_copy(update={"gate": gate, "metrics": ["rmse"]})}
    )
    as_rmse = {h: {**m, "outcome": {**m["outcome"], "metrics": {"rmse": m["outcome"]["metrics"]["hit_rate@10"]}}}
               for h, m in state["members"].items() if m["status"] == "done"}
    table, metric = ranked(sweep, {"members": as_rmse})
    assert metric == "rmse" and [r["member"] for r in table] == [a, c, b]
