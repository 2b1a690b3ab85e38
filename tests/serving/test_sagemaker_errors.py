"""AWS errors reach people as rscale errors naming the service, the call and the fix; transient ones are
retried by botocore's own retry configuration first. Against moto's server, whose UpdateEndpoint answers
HTTP 500 (moto 5.2 does not implement it): the failure a real AWS outage looks like to the client."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest
from sagemaker_moto import REGION, aws_environment, fake_package, moto_server, push_image  # noqa: F401 - fixtures
from typer.testing import CliRunner

import rscale
from rscale.cli.app import STATE, app
from rscale.cli.main import main  # noqa: F401  (registers every command module)

SERVING = "serving={{tier: serverless, memory_mb: {memory}, max_concurrency: 2}}"


@pytest.fixture
def package(aws: str, tmp_path: Path) -> Path:
    push_image("rscale-serving", rscale.__version__)
    return fake_package(tmp_path / "package", "20261201-v1")


def _deploy(package: Path, memory: int) -> tuple[int, str]:
    STATE["debug"] = False
    result = CliRunner().invoke(
        app, ["deploy", "specs/conversion.yaml", SERVING.format(memory=memory), "--stack", "aws", "--model-dir", str(package)]
    )
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, " ".join(result.output.split())


def test_a_500_on_update_endpoint_is_named_retried_and_the_old_config_keeps_serving(package: Path, project: Path) -> None:
    code, output = _deploy(package, 2048)
    assert code == 0, output
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    before = sagemaker.describe_endpoint(EndpointName="conversion")
    code, output = _deploy(package, 4096)  # a new config: UpdateEndpoint, which answers 500
    assert code == 1
    assert "AWS SageMaker UpdateEndpoint failed" in output and "HTTP 500" in output
    assert re.search(r"after \d+ retries", output)  # botocore's standard retry mode retried it first
    assert "keeps serving its previous config" in output and "rs status" in output
    after = sagemaker.describe_endpoint(EndpointName="conversion")
    assert after["EndpointConfigName"] == before["EndpointConfigName"] and after["EndpointStatus"] == "InService"
    # the next deploy or status reports the endpoint as it is, and the unused config is pruned by the next deploy
    status = CliRunner().invoke(app, ["status", "conversion"])
    assert status.exit_code == 0 and "healthy" in status.output


def test_missing_credentials_and_unreachable_aws_are_named(package: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    code, output = _deploy(package, 2048)
    assert code == 1 and "AWS credentials not found" in output and "AWS_PROFILE" in output
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    code, output = _deploy(package, 2048)
    assert code == 1 and "AWS could not be reached" in output


def test_undeploy_takes_a_stack_for_an_endpoint_this_machine_has_no_record_of(package: Path, project: Path) -> None:
    from rscale.serving.endpoint import remove_state

    code, output = _deploy(package, 2048)
    assert code == 0, output
    remove_state("conversion")  # as on another machine: the endpoint exists in AWS, not in .rs/
    result = CliRunner().invoke(app, ["undeploy", "conversion", "--stack", "aws"])
    assert result.exit_code == 0, result.output
    assert boto3.client("sagemaker", region_name=REGION).list_endpoints()["Endpoints"] == []


def test_the_region_may_come_from_aws_default_region(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from rscale.compiler.stack import load_stack
    from rscale.serving.sagemaker import SageMakerDeployer

    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    stack = load_stack("aws")
    assert stack.serving.region == "${env:AWS_REGION}"
    assert SageMakerDeployer(stack).client("sagemaker").meta.region_name == "eu-west-1"
