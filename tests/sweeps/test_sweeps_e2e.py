"""Whole sweeps on specs/recs.yaml at a tiny size: a 2x2 grid through `rs run -m`, a resume after an interrupt,
and two members side by side. Each test uses its own swept values, so no test is served another's training
from ZenML's cache (the store is shared by the test session)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rscale.compiler.compilation import compile_spec
from rscale.compiler.stack import DuckDBWarehouse

pytestmark = pytest.mark.e2e

TINY = ["train.max_epochs=1", "model.dim=8", "train.batch_size=128"]


@pytest.fixture
def seeded(project: Path) -> Path:
    from rscale.data.seed import seed_demo

    seed_demo(DuckDBWarehouse(), sessions=600, seed=1)
    return project


def _statuses(run_id: str) -> dict[str, str]:
    from zenml.client import Client

    run = Client().get_pipeline_run(run_id)
    return {name: str(step.status.value) for name, step in run.steps.items()}


def _cli(*args: str):
    from rscale.cli import main as _commands  # noqa: F401  (registers every command)
    from rscale.cli.app import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_grid_runs_each_member_once_shares_data_steps_tags_runs_and_writes_a_deployable_best(seeded: Path) -> None:
    result = _cli("run", "specs/recs.yaml", *TINY, "-m", "train.lr=1e-3,3e-2", "model.encoder=gru,mean")
    assert result.exit_code == 0, result.output
    sweep_folder = next((seeded / "build" / "recs" / "sweeps").iterdir())
    sweep_id = sweep_folder.name
    state = json.loads((sweep_folder / "state.json").read_text())
    members = json.loads((sweep_folder / "sweep.json").read_text())["members"]
    assert [m["swept"] for m in members] == [
        {"train.lr": 0.001, "model.encoder": "gru"},
        {"train.lr": 0.001, "model.encoder": "mean"},
        {"train.lr": 0.03, "model.encoder": "gru"},
        {"train.lr": 0.03, "model.encoder": "mean"},
    ]
    outcomes = [state["members"][m["hash"]]["outcome"] for m in members]
    assert all(state["members"][m["hash"]]["status"] == "done" for m in members)

    # data loading and checks ran once: members 2..n were served them from ZenML's cache; training never was
    statuses = [_statuses(o["run_id"]) for o in outcomes]
    for later in statuses[1:]:
        assert later["load_data"] == "cached", later
    assert all(s["train_model"] == "completed" for s in statuses), statuses
    assert all("deploy_model" not in s for s in statuses)  # sweep members never deploy

    # each member is its own tracked run, grouped under the sweep id and tagged with its swept values
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{seeded / '.rs' / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    tracked = client.search_runs(experiments, filter_string=f"tags.`rscale.sweep_id` = '{sweep_id}'")
    assert sorted(r.info.run_id for r in tracked) == sorted(o["training"]["tracker_run_id"] for o in outcomes)
    by_id = {r.info.run_id: r.data.tags for r in tracked}
    for member, outcome in zip(members, outcomes, strict=True):
        tags = by_id[outcome["training"]["tracker_run_id"]]
        assert tags["sweep.train.lr"] == str(member["swept"]["train.lr"])
        assert tags["sweep.model.encoder"] == member["swept"]["model.encoder"]

    # the results table: the terminal, CSV sorted by the gate metric, a plot and an HTML page
    assert f"sweep {sweep_id}" in result.output and "hit_rate@10" in result.output
    rows = (sweep_folder / "results.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:6] == ["member", "status", "train.lr", "model.encoder", "hit_rate@10", "mrr@10"]
    hits = [float(r.split(",")[4]) for r in rows[1:]]
    assert len(hits) == 4 and hits == sorted(hits, reverse=True)
    assert (sweep_folder / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (sweep_folder / "results.html").read_text()
    assert "data:image/png;base64," in page and page.count("<tr>") == 5

    # best.yaml is the best member's spec: it validates and compiles to the very same plan
    best_hash = rows[1].split(",")[0]
    best_text = (sweep_folder / "best.yaml").read_text()
    assert re.search(r"\n  query: \|-?\n    WITH views AS \(\n", best_text)  # a literal block: readable SQL
    best_plan = compile_spec(sweep_folder / "best.yaml").plans[0]
    assert best_plan.hash == best_hash
    original = compile_spec("specs/recs.yaml").plans[0]
    assert yaml.safe_load(best_text)["data"]["query"].strip() == original.data.source_sql
    compiled = _cli("compile", str(sweep_folder / "best.yaml"))
    assert compiled.exit_code == 0 and f"plan {best_hash}" in compiled.output

    # the same command again resumes a finished sweep: nothing runs, the report is rewritten
    again = _cli("run", "specs/recs.yaml", *TINY, "-m", "train.lr=1e-3,3e-2", "model.encoder=gru,mean")
    assert again.exit_code == 0, again.output
    assert "4 members, 4 done, 0 to run" in again.output
    assert json.loads((sweep_folder / "state.json").read_text()) == state


def test_interrupted_sweep_resumes_running_only_the_unfinished_member(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rscale.stages import runner
    from rscale.sweeps import run_sweep

    real = runner.run_compiled
    ran: list[str] = []

    def interrupted_at_second(plan_file, *args, **kwargs):
        member = Path(plan_file).parent.name
        ran.append(member)
        if len(ran) == 2:
            raise KeyboardInterrupt  # as if Ctrl-C hit while member 2 trained
        return real(plan_file, *args, **kwargs)

    compiled = compile_spec("specs/recs.yaml", [*TINY, "model.encoder=mean", "train.lr=2e-3,4e-3"])
    first, second = (p.hash for p in compiled.plans)
    monkeypatch.setattr(runner, "run_compiled", interrupted_at_second)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(compiled)
    sweep_folder = seeded / "build" / "recs" / "sweeps"
    (folder,) = sweep_folder.iterdir()
    state = json.loads((folder / "state.json").read_text())
    assert {h: m["status"] for h, m in state["members"].items()} == {first: "done", second: "interrupted"}

    def counted(plan_file, *args, **kwargs):
        ran.append(Path(plan_file).parent.name)
        return real(plan_file, *args, **kwargs)

    ran.clear()
    monkeypatch.setattr(runner, "run_compiled", counted)
    run_sweep(compile_spec("specs/recs.yaml", [*TINY, "model.encoder=mean", "train.lr=2e-3,4e-3"]), resume=folder.name)
    assert ran == [second]
    state = json.loads((folder / "state.json").read_text())
    assert {h: m["status"] for h, m in state["members"].items()} == {first: "done", second: "done"}
    assert _statuses(state["members"][second]["outcome"]["run_id"])["load_data"] == "cached"
    assert len((folder / "results.csv").read_text().splitlines()) == 3


def test_two_members_side_by_side_in_child_processes(seeded: Path) -> None:
    from zenml.client import Client

    from rscale.sweeps import run_sweep

    sweep = run_sweep(compile_spec("specs/recs.yaml", [*TINY, "model.encoder=mean", "train.lr=5e-3,6e-3"]), max_parallel=2)
    state = json.loads(sweep.state_file.read_text())
    assert [state["members"][m.plan.hash]["status"] for m in sweep.members] == ["done", "done"], state
    runs = [Client().get_pipeline_run(state["members"][m.plan.hash]["outcome"]["run_id"]) for m in sweep.members]
    # both ran at once: each started before the other ended
    assert runs[0].start_time < runs[1].end_time and runs[1].start_time < runs[0].end_time
    for member in sweep.members:
        assert (member.folder / "run.log").exists()  # each child's output, kept for reading after the fact
        assert state["members"][member.plan.hash]["outcome"]["swept"] == member.plan.swept
