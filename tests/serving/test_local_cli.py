"""`rs serve`, `rs status`, `rs predict`, `rs stop`, `rs deploy`, `rs undeploy`, run in-process on a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_package import EXAMPLE, trained_package
from typer.testing import CliRunner

import rscale.cli.serving  # noqa: F401 - registers the commands
from rscale.cli.app import app
from rscale.serving.endpoint import read_state, recorded_endpoints


@pytest.fixture
def rs(project: Path):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    yield invoke
    for name in recorded_endpoints():
        invoke("stop", name)


def test_serve_status_predict_stop(rs, project: Path) -> None:
    package = trained_package()
    result = rs("serve", "--model-dir", str(package))
    assert result.exit_code == 0, result.output
    assert "serving conversion (local) at http://127.0.0.1:" in result.output
    pid = read_state("conversion")["pid"]

    again = rs("serve", "conversion")  # by name: the package it last served, already running
    assert again.exit_code == 0, again.output
    assert read_state("conversion")["pid"] == pid

    status = rs("status")
    assert status.exit_code == 0, status.output
    assert "conversion  local  healthy  http://127.0.0.1:" in status.output
    assert f"pid: {pid}" in status.output and f"version: {read_state('conversion')['model_version']}" in status.output

    predicted = rs("predict", "conversion", json.dumps(EXAMPLE))
    assert predicted.exit_code == 0, predicted.output
    assert 0.0 <= json.loads(predicted.output)["predictions"][0]["probability"] <= 1.0

    requests = project / "requests.jsonl"
    requests.write_text("\n".join(json.dumps(dict(EXAMPLE, n_views=n)) for n in (1, 2, 3)) + "\n")
    batch = rs("predict", "conversion", "--file", str(requests))
    assert batch.exit_code == 0, batch.output
    assert len(json.loads(batch.output)["predictions"]) == 3

    rejected = rs("predict", "conversion", '{"n_views": 1}')
    assert rejected.exit_code == 1
    assert "missing field" in rejected.output and "422" in rejected.output

    not_json = rs("predict", "conversion", "{n_views: 1}")
    assert not_json.exit_code == 2 and "not valid JSON" in not_json.output

    stopped = rs("stop", "conversion")
    assert stopped.exit_code == 0 and "stopped conversion" in stopped.output
    assert "no endpoints" in rs("status").output
    gone = rs("stop", "conversion")
    assert gone.exit_code == 1 and "no endpoint named `conversion`" in gone.output


def test_serve_by_name_takes_an_unregistered_package_under_build_only_with_force(rs, project: Path) -> None:
    import shutil

    # a name no other test registers: the session's model registry is shared, and e2e runs promote theirs
    package = project / "build" / "unregistered" / "package"
    shutil.copytree(trained_package(), package)
    manifest = json.loads((package / "manifest.json").read_text())
    (package / "manifest.json").write_text(json.dumps({**manifest, "name": "unregistered"}))
    refused = rs("serve", "unregistered")  # no version of it passed a gate in the model registry
    assert refused.exit_code == 2 and "no production version" in refused.output
    result = rs("serve", "unregistered", "--force")
    assert result.exit_code == 0, result.output
    assert "FORCED" in result.output
    state = read_state("unregistered")
    assert state["package_dir"] == str(project / "build" / "unregistered" / "package")
    assert state["gate"]["forced"] is True and state["gate"]["passed"] is None


def test_serve_without_a_package_says_how_to_get_one(rs) -> None:
    result = rs("serve", "never-run")  # a name no test runs: the session's model registry is shared
    assert result.exit_code == 2
    assert "`never-run` has no production version" in result.output and "rs run specs/never-run.yaml" in result.output
    forced = rs("serve", "never-run", "--force")
    assert forced.exit_code == 2 and "no model package found for `never-run`" in forced.output


def test_deploy_and_undeploy_go_through_the_specs_tier(rs, project: Path) -> None:
    result = rs("deploy", "specs/conversion.yaml", "--model-dir", str(trained_package()))
    assert result.exit_code == 0, result.output
    assert "deployed conversion (local)" in result.output
    state = read_state("conversion")
    assert state["tier"] == "local" and state["stack"]["name"] == "local"
    assert rs("undeploy", "conversion").exit_code == 0
    assert read_state("conversion") is None
