"""LocalDeployer: detached server processes with state under .rs/serving/, real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import httpx
import pytest
from tiny_package import EXAMPLE, conversion_plan, package_copy, trained_package

from rscale.errors import RscaleError
from rscale.serving.endpoint import Deployer, Endpoint, deployer_for, latest_package, read_state, recorded_endpoints
from rscale.serving.local import LocalDeployer, _is_server


@pytest.fixture
def plan():
    return conversion_plan()


@pytest.fixture
def deployer(project: Path, plan):
    deployer = deployer_for(plan)
    yield deployer
    deployer.undeploy(plan.name)  # never leave a server behind, whatever the test did


def test_the_registry_gives_a_local_deployer_that_meets_the_protocol(deployer) -> None:
    assert isinstance(deployer, LocalDeployer)
    assert isinstance(deployer, Deployer)


def test_deploy_status_predict_redeploy_undeploy(project: Path, deployer: LocalDeployer, plan) -> None:
    package = trained_package()
    endpoint = deployer.deploy(plan, package)
    assert isinstance(endpoint, Endpoint)
    assert endpoint.tier == "local" and endpoint.healthy
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert endpoint.plan_hash == plan.hash
    manifest = json.loads((package / "manifest.json").read_text())
    assert endpoint.model_version == manifest["version"]

    state = read_state(plan.name)
    assert state is not None
    assert (project / ".rs" / "serving" / f"{plan.name}.json").is_file()
    assert state["url"] == endpoint.url and state["package_dir"] == str(package.resolve())
    assert _is_server(state["pid"])
    assert recorded_endpoints() == [plan.name]
    assert "starting conversion" in (project / ".rs" / "serving" / f"{plan.name}.log").read_text()
    # the endpoint never holds the warehouse file
    assert not list((project / ".rs").glob("*.duckdb"))
    assert not any(name.endswith(".duckdb") for name in _open_files(state["pid"]))

    status = deployer.status(plan.name)
    assert status is not None and status.healthy and status.details["pid"] == state["pid"]

    body = deployer.predict(plan.name, {"instances": [EXAMPLE, EXAMPLE]})
    assert len(body["predictions"]) == 2 and body["model_version"] == manifest["version"]
    with pytest.raises(RscaleError, match="422.*avg_price"):
        deployer.predict(plan.name, {k: v for k, v in EXAMPLE.items() if k != "avg_price"})

    again = deployer.deploy(plan, package)  # same plan, same package, running: nothing happens
    assert again.url == endpoint.url
    assert read_state(plan.name)["pid"] == state["pid"]

    assert latest_package(plan.name) == package.resolve()
    assert deployer.undeploy(plan.name) is True
    assert not _is_server(state["pid"])
    # the two accepted predictions are in the use case's prediction log, where the warehouse ingests them
    logged = [json.loads(line) for path in (project / ".rs" / "predictions" / plan.name).glob("*.jsonl")
              for line in path.read_text().splitlines()]
    assert [(line["request_id"], line["records"]) for line in logged] == [(body["request_id"], 2)]  # one line a request
    assert deployer.status(plan.name) is None
    assert read_state(plan.name) is None
    assert deployer.undeploy(plan.name) is False
    with pytest.raises(RscaleError, match="no local endpoint"):
        deployer.predict(plan.name, EXAMPLE)


def test_a_new_package_replaces_the_old_server_without_downtime(project: Path, deployer: LocalDeployer, plan) -> None:
    first = deployer.deploy(plan, trained_package())
    old_pid = read_state(plan.name)["pid"]
    newer = package_copy(trained_package(), project / "packages" / "v2", version="v2-test")

    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:  # a new connection per request, as independent clients make them
                response = httpx.post(f"{first.url}/invocations", json=EXAMPLE, timeout=10)
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text}")
                versions.add(response.json()["model_version"])
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            stop.wait(0.005)  # leave the two shared CPUs to the servers starting and stopping

    thread = threading.Thread(target=client)
    thread.start()
    try:
        second = deployer.deploy(plan, newer)
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert second.url == first.url  # same port: clients keep their URL
    assert second.model_version == "v2-test"
    assert read_state(plan.name)["pid"] != old_pid
    assert not _is_server(old_pid)
    assert httpx.post(f"{first.url}/invocations", json=EXAMPLE).json()["model_version"] == "v2-test"
    assert versions <= {first.model_version, "v2-test"}


def test_a_package_that_cannot_load_fails_with_the_log_tail(project: Path, deployer: LocalDeployer, plan) -> None:
    broken = package_copy(trained_package(), project / "packages" / "broken", version="broken")
    (broken / "weights.pt").unlink()
    with pytest.raises(RscaleError) as raised:
        deployer.deploy(plan, broken)
    assert "exited" in str(raised.value) and "weights.pt is missing" in str(raised.value)
    assert read_state(plan.name) is None


def test_a_directory_without_a_manifest_is_refused_before_starting(project: Path, deployer: LocalDeployer, plan) -> None:
    with pytest.raises(RscaleError, match="not a model package"):
        deployer.deploy(plan, project)


def _open_files(pid: int) -> list[str]:
    """What process `pid` has open; a descriptor closed between listing and reading it is skipped."""
    names = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            names.append(os.readlink(fd))
        except FileNotFoundError:
            continue
    return names
