"""Two whole runs of one use case, one whose gate passes and one whose gate fails, then:

- the gate holds everywhere: `rs serve` and `rs deploy` take the production version (the one that passed),
  a package that failed its gate is served only with `--force`, and the record and `rs status` say so;
- secrets stay out of every file: the runs track to MLflow through a URI given as `${env:...}` (first run)
  and `${secret:...}` (second run), each holding a token, and no file under .rs/ or build/ (SQLite
  databases, logs, artifacts, packages, the emitted pipeline) holds either token.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rscale.cli.app import STATE, app
from rscale.cli.main import main  # noqa: F401  (registers every command module)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NAME = "relgate"  # a use case of its own: the session's model registry holds no version of it yet
SMALL = ["train.max_epochs=1", "train.batch_size=128"]
ENV_TOKEN = f"envtok{uuid.uuid4().hex}"
SECRET_TOKEN = f"zenmltok{uuid.uuid4().hex}"


def _spec(project: Path, tracking_uri: str) -> Path:
    text = (REPO / "specs" / "conversion.yaml").read_text()
    text = text.replace("name: conversion", f"name: {NAME}").replace(
        "tracker: {kind: mlflow}", f'tracker: {{kind: mlflow, tracking_uri: "{tracking_uri}"}}'
    )
    path = project / "specs" / f"{NAME}.yaml"
    path.write_text(text)
    return path


def _run(spec: Path, overrides: list[str]) -> Any:
    from rscale.compiler.compilation import compile_spec
    from rscale.compiler.emit import emit
    from rscale.stages.runner import run_compiled

    plan = compile_spec(spec, overrides).plans[0]
    return run_compiled(emit(plan) / "plan.json", {}, deploy=False)  # deploying is what the tests do by hand


def _rs(*args: str) -> Any:
    STATE["debug"] = False
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, session_project: Path) -> Iterator[dict[str, Any]]:
    from rscale.compiler.stack import DuckDBWarehouse
    from rscale.data.seed import seed_demo

    project = tmp_path_factory.mktemp("gate")
    for folder in ("specs", "stacks"):
        shutil.copytree(REPO / folder, project / folder)
    with pytest.MonkeyPatch.context() as env:
        env.chdir(project)
        env.setenv("RS_PROJECT_DIR", str(project))
        seed_demo(DuckDBWarehouse(), sessions=1500, seed=5)
        # sqlite URIs (uri=true) carry query parameters SQLite ignores: the token rides along to MLflow
        db = project / ".rs" / "mlflow.db"
        env.setenv("RS_TEST_MLFLOW_URI", f"sqlite:///file:{db}?uri=true&token={ENV_TOKEN}")
        _spec(project, "${env:RS_TEST_MLFLOW_URI}")
        before_any = {"serve": _rs("serve", NAME)}
        before_any["deploy"] = _rs("deploy", f"specs/{NAME}.yaml")
        passed = _run(project / "specs" / f"{NAME}.yaml", [*SMALL, "evaluate.gate.min_lift=-1.0"])
        from rscale.serving.endpoint import newest_package, read_manifest

        passed_version = read_manifest(newest_package(NAME)).get("version")  # type: ignore[arg-type]

        from zenml.client import Client

        Client().create_secret(f"rs_test_{uuid.uuid4().hex[:8]}", values={"uri": f"sqlite:///file:{db}?uri=true&token={SECRET_TOKEN}"})
        secret_name = next(s.name for s in Client().list_secrets(size=100).items if s.name.startswith("rs_test_"))
        _spec(project, "${secret:" + secret_name + ".uri}")
        failed = _run(project / "specs" / f"{NAME}.yaml", [*SMALL, "evaluate.gate.min_lift=9.0"])
        yield {
            "project": project, "passed": passed, "failed": failed, "before_any": before_any,
            "session": session_project, "passed_version": passed_version,
        }  # fmt: skip
        for name in ("stop", "undeploy"):
            CliRunner().invoke(app, [name, NAME])


def test_without_a_production_version_deploy_and_serve_say_how_to_get_one(runs: dict[str, Any]) -> None:
    for result in runs["before_any"].values():
        output = " ".join(result.output.split())
        assert result.exit_code == 2, output
        assert f"`{NAME}` has no production version" in output and "--force" in output and "rs run" in output


def test_the_two_runs_passed_and_failed_their_gates(runs: dict[str, Any]) -> None:
    assert runs["passed"].gate.passed is True and runs["passed"].registration.stage == "production"
    assert runs["failed"].gate.passed is False and runs["failed"].registration.stage is None


def test_serve_and_deploy_take_the_production_version_not_the_newest(runs: dict[str, Any]) -> None:
    from rscale.serving.endpoint import newest_package, read_manifest, read_state
    from rscale.serving.versions import choose_package

    production_version = runs["passed_version"]
    assert read_manifest(newest_package(NAME))["version"] != production_version  # the failed run is newer
    chosen = choose_package(NAME)  # what `rs serve NAME` serves
    assert read_manifest(chosen.package_dir)["version"] == production_version
    assert chosen.gate["passed"] is True and chosen.gate["forced"] is False
    assert chosen.gate["registry_version"].startswith(f"{NAME}:")

    deployed = _rs("deploy", f"specs/{NAME}.yaml")
    assert deployed.exit_code == 0, deployed.output
    state = read_state(NAME)
    assert state["model_version"] == production_version
    assert state["gate"]["passed"] is True and state["gate"]["forced"] is False
    assert "gate: passed" in deployed.output


def test_a_package_that_failed_its_gate_is_served_only_with_force_and_says_so(runs: dict[str, Any]) -> None:
    from rscale.serving.endpoint import newest_package, read_manifest, read_state

    failed_package = newest_package(NAME)
    assert failed_package is not None and read_manifest(failed_package)["version"] != runs["passed_version"]
    refused = _rs("deploy", f"specs/{NAME}.yaml", "--model-dir", str(failed_package))
    assert refused.exit_code == 2 and "did not pass its gate" in " ".join(refused.output.split())

    forced = _rs("deploy", f"specs/{NAME}.yaml", "--force")
    assert forced.exit_code == 0, forced.output
    state = read_state(NAME)
    assert state["model_version"] == read_manifest(failed_package)["version"]
    assert state["gate"]["forced"] is True and state["gate"]["passed"] is False
    status = " ".join(_rs("status", NAME).output.split())
    assert "FORCED: its gate did not pass" in status
    assert _rs("undeploy", NAME).exit_code == 0


def _files(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        for folder in (root / ".rs", root / "build"):
            if folder.is_dir():
                yield from (path for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def test_no_file_holds_a_secret_value(runs: dict[str, Any]) -> None:
    roots = [runs["project"], runs["session"]]
    files = list(_files(roots))
    kinds = {path.suffix for path in files}
    assert {".db", ".json", ".py"} <= kinds, kinds  # the stores, records and emitted pipeline are searched
    assert any(path.name == "mlflow.db" for path in files)
    tokens = [token.encode() for token in (ENV_TOKEN, SECRET_TOKEN)]
    hits = [str(path) for path in files for token in tokens if token in path.read_bytes()]
    assert hits == []
    names = [str(path) for path in files if re.search(f"{ENV_TOKEN}|{SECRET_TOKEN}", str(path))]
    assert names == []
