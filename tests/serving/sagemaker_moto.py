"""Fixtures for the SageMaker tier tests: moto's server on 127.0.0.1 and the UpdateEndpoint call moto lacks.

Imported by tests/serving/test_sagemaker_*.py (pytest puts this folder on sys.path); not a test module itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "rscale-test-bucket"
ECR_URI = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/rscale-endpoints"


@pytest.fixture(scope="session", name="moto_url")
def moto_server() -> Iterator[str]:
    """One moto server per test session, on 127.0.0.1 and a free port: real HTTP, real botocore serialization."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(name="aws")
def aws_environment(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Dummy credentials, AWS_ENDPOINT_URL at moto, the aws stack's variables, and a clean moto state."""
    import boto3
    import httpx

    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("RS_SAGEMAKER_ROLE", ROLE)
    monkeypatch.setenv("RS_S3_BUCKET", BUCKET)
    monkeypatch.setenv("RS_ECR_URI", ECR_URI)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    return moto_url


def aws_plan(*overrides: str) -> Any:
    """specs/conversion.yaml compiled for the repo's aws stack (offline: no warehouse needed)."""
    import inspect

    from rscale.compiler.compilation import compile_spec

    offline = {"offline": True} if "offline" in inspect.signature(compile_spec).parameters else {}
    spec = Path(__file__).parents[2] / "specs" / "conversion.yaml"
    return compile_spec(spec, list(overrides), stack="aws", **offline).plans[0]


def push_image(repository: str, tag: str) -> None:
    """Put an image manifest into moto's ECR, as `docker push` would."""
    import boto3

    ecr = boto3.client("ecr", region_name=REGION)
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2, "digest": "sha256:" + "0" * 64},
        "layers": [],
    }
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)


def queue_invocation_results(moto_url: str, *bodies: dict[str, Any]) -> None:
    """What moto's sagemaker-runtime answers to the next new invoke_endpoint requests, in order."""
    import httpx

    results = [{"Body": json.dumps(body), "ContentType": "application/json"} for body in bodies]
    httpx.post(
        f"{moto_url}/moto-api/static/sagemaker/endpoint-results",
        json={"account_id": ACCOUNT, "region": REGION, "results": results},
    ).raise_for_status()


def fake_package(path: Path, version: str, weights: bytes = b"weights") -> Path:
    """A package directory as serving sees it before loading: manifest (version, request schema) and weights."""
    path.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "conversion",
        "version": version,
        "request_schema": {
            "type": "object",
            "properties": {"n_views": {"type": ["number", "null"]}, "device": {"type": ["string", "integer", "null"]}},
            "required": ["n_views", "device"],
        },
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (path / "weights.pt").write_bytes(weights)
    return path


class MotoUpdateEndpoint:
    """moto 5.2 does not implement UpdateEndpoint. A botocore Stubber answers that one call of the deployer's
    client (checking the request against botocore's model and the expected parameters), and the effect
    AWS would have is applied to moto's own backend, so describe_endpoint reads the switch back.

    `expect(...)` queues one expected call and the status the endpoint then reaches (InService or Failed).
    """

    def __init__(self, client: Any) -> None:
        import boto3
        from botocore.stub import Stubber

        self.client = client
        self._shadow = boto3.client("sagemaker", region_name=REGION)
        self.stubber = Stubber(self._shadow)
        self.stubber.activate()
        self._outcomes: list[tuple[str, str | None]] = []
        self._params: dict[str, Any] = {}
        self.calls: list[dict[str, Any]] = []
        client.meta.events.register("before-parameter-build.sagemaker.UpdateEndpoint", self._capture)
        client.meta.events.register("before-call.sagemaker.UpdateEndpoint", self._answer)

    def expect(self, endpoint: str, config: str, status: str = "InService", reason: str | None = None) -> None:
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint}"
        self.stubber.add_response(
            "update_endpoint", {"EndpointArn": arn}, expected_params={"EndpointName": endpoint, "EndpointConfigName": config}
        )
        self._outcomes.append((status, reason))

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self._params = dict(params)

    def _answer(self, **_: Any) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse
        from moto.backends import get_backend

        parsed = self._shadow.update_endpoint(**self._params)  # the Stubber checks the request here
        status, reason = self._outcomes.pop(0)
        backend = get_backend("sagemaker")[ACCOUNT][REGION]
        endpoint = backend.endpoints[self._params["EndpointName"]]
        config = backend.describe_endpoint_config(self._params["EndpointConfigName"])
        endpoint.endpoint_config_name = self._params["EndpointConfigName"]
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.endpoint_status, endpoint.failure_reason = status, reason
        self.calls.append(dict(self._params))
        return AWSResponse(None, 200, {}, None), parsed

    def assert_done(self) -> None:
        self.stubber.assert_no_pending_responses()
