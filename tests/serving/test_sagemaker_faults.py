"""A deploy killed (SIGKILL, a real child process) right after it created the new endpoint config and before
the endpoint switched to it: the endpoint keeps serving, `rs status` reports it as it is, and the next
deploy of the same plan and package repairs it, reusing the orphaned model and config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from sagemaker_moto import (  # noqa: F401 - fixtures
    REGION,
    MotoUpdateEndpoint,
    aws_environment,
    aws_plan,
    fake_package,
    moto_server,
    push_image,
)
from typer.testing import CliRunner

import rscale
from rscale.serving.sagemaker import DeployNames, SageMakerDeployer, package_sha256

# Runs one deploy in a child process that kills itself the moment CreateEndpointConfig has answered.
KILLED_DEPLOY = """
import os, signal, sys
from pathlib import Path
from rscale.compiler.plan import Plan
from rscale.serving.sagemaker import SageMakerDeployer

plan = Plan.read(sys.argv[1])
deployer = SageMakerDeployer(plan.stack, wait_delay_s=0.01, wait_max_attempts=3)
deployer.sagemaker.meta.events.register(
    "after-call.sagemaker.CreateEndpointConfig", lambda **_: os.kill(os.getpid(), signal.SIGKILL)
)
deployer.deploy(plan, Path(sys.argv[2]))
"""


@pytest.fixture
def package(aws: str, tmp_path: Path) -> Path:
    push_image("rscale-serving", rscale.__version__)
    return fake_package(tmp_path / "package", "20261201-v1")


def _killed_deploy(plan, package: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.to_json())
    child = subprocess.run([sys.executable, "-c", KILLED_DEPLOY, str(plan_file), str(package)], capture_output=True, timeout=120)
    assert child.returncode == -9, child.stderr.decode()[-2000:]


def _deployer(plan) -> SageMakerDeployer:
    return SageMakerDeployer(plan.stack, wait_delay_s=0.01, wait_max_attempts=3)


def test_a_first_deploy_killed_after_its_config_is_finished_by_the_next(package: Path, tmp_path: Path) -> None:
    plan = aws_plan("serving={tier: serverless, memory_mb: 2048, max_concurrency: 2}")
    _killed_deploy(plan, package, tmp_path)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    version = DeployNames.of("conversion", plan.hash, package_sha256(package)).version
    assert [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]] == [version]
    assert sagemaker.list_endpoints()["Endpoints"] == []  # killed before the endpoint was created
    endpoint = _deployer(plan).deploy(plan, package)
    assert endpoint.details["action"] == "created" and endpoint.healthy is True
    assert sagemaker.describe_endpoint(EndpointName="conversion")["EndpointConfigName"] == version
    assert len(sagemaker.list_models()["Models"]) == 1  # the orphaned model was reused, not duplicated


def test_an_update_killed_before_the_switch_leaves_the_old_config_serving_then_is_repaired(
    package: Path, tmp_path: Path, project: Path
) -> None:
    from rscale.cli.app import app
    from rscale.cli.main import main  # noqa: F401

    old_plan = aws_plan("serving={tier: serverless, memory_mb: 2048, max_concurrency: 2}")
    new_plan = aws_plan("serving={tier: serverless, memory_mb: 4096, max_concurrency: 2}")
    old = _deployer(old_plan).deploy(old_plan, package)
    _killed_deploy(new_plan, package, tmp_path)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    new_version = DeployNames.of("conversion", new_plan.hash, package_sha256(package)).version
    described = sagemaker.describe_endpoint(EndpointName="conversion")
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] != new_version
    status = CliRunner().invoke(app, ["status", "conversion"])  # reports what is live: the old version
    assert status.exit_code == 0 and "healthy" in status.output and old.plan_hash in status.output, status.output

    repair = _deployer(new_plan)
    updates = MotoUpdateEndpoint(repair.sagemaker)
    updates.expect("conversion", new_version)
    endpoint = repair.deploy(new_plan, package)
    updates.assert_done()
    assert endpoint.details["action"] == "updated"
    assert sagemaker.describe_endpoint(EndpointName="conversion")["EndpointConfigName"] == new_version
    assert json.loads(Path(project / ".rs" / "serving" / "conversion.json").read_text())["plan_hash"] == new_plan.hash
