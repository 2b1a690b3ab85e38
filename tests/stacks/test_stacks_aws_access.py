"""`rs stack up aws --check` against moto's server on 127.0.0.1, the stand-in for AWS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rscale.cli.stack  # noqa: F401  (registers `rs stack`)
from rscale.cli.app import app
from rscale.compiler.stack import load_stack
from rscale.stacks.aws_access import check_aws_access

ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, project: Path) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("RS_S3_BUCKET", "rscale-moto")
    monkeypatch.setenv("RS_SAGEMAKER_ROLE", f"arn:aws:iam::{ACCOUNT}:role/rscale-sagemaker")
    monkeypatch.setenv("RS_ECR_URI", f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com")
    return moto_url


def _create(resources: set[str]) -> None:
    import boto3

    if "bucket" in resources:
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="rscale-moto")
    if "role" in resources:
        boto3.client("iam").create_role(RoleName="rscale-sagemaker", AssumeRolePolicyDocument="{}")


def test_check_names_what_does_not_exist(aws: str) -> None:
    import boto3

    problems = check_aws_access(load_stack("aws"))
    assert any("S3 bucket `rscale-moto` is not reachable" in p for p in problems)
    assert any("IAM role `arn:aws:iam::123456789012:role/rscale-sagemaker` is not reachable" in p for p in problems)
    _create({"bucket", "role"})
    try:
        assert check_aws_access(load_stack("aws")) == []
        code = CliRunner().invoke(app, ["stack", "up", "aws", "--check"])
        assert code.exit_code == 0, code.output
        assert "AWS: bucket, roles and registry answered" in code.output
    finally:
        boto3.client("iam").delete_role(RoleName="rscale-sagemaker")
        boto3.client("s3", region_name="us-east-1").delete_bucket(Bucket="rscale-moto")


def test_a_registry_of_another_account_is_named(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RS_ECR_URI", "999999999999.dkr.ecr.us-east-1.amazonaws.com")
    problems = check_aws_access(load_stack("aws"))
    assert any("belongs to account 999999999999" in p and ACCOUNT in p for p in problems)
