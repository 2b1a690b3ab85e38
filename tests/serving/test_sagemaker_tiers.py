"""SageMaker tiers against moto's server: create each tier, promote, re-deploy, roll back, undeploy, predict."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from sagemaker_moto import (  # noqa: F401 - fixtures
    BUCKET,
    ECR_URI,
    REGION,
    ROLE,
    MotoUpdateEndpoint,
    aws_environment,
    aws_plan,
    fake_package,
    moto_server,
    push_image,
    queue_invocation_results,
)

import rscale
from rscale.errors import ConfigurationError, RscaleError
from rscale.serving.endpoint import Deployer, deployer_for
from rscale.serving.sagemaker import (
    TAG_PACKAGE,
    TAG_PLAN,
    DeployFailed,
    DeployNames,
    SageMakerDeployer,
    model_tarball,
    package_sha256,
)

SERVERLESS = "serving={tier: serverless, memory_mb: 3072, max_concurrency: 8, provisioned_concurrency: 2}"
AUTOSCALING = (
    "serving={tier: autoscaling, instance_type: ml.g4dn.xlarge, min_instances: 2, max_instances: 5,"
    " target: {invocations_per_instance: 250.0, scale_in_cooldown_s: 600, scale_out_cooldown_s: 30}}"
)
CUSTOM = "serving={tier: custom, build: {}, instance_type: ml.c5.xlarge, instance_count: 3}"
CUSTOM_IMAGE = f"serving={{tier: custom, image: '{ECR_URI}/my-server:7', instance_count: 1}}"
RESOURCE = "endpoint/conversion/variant/main"


plan_for = aws_plan


def deployer(plan: Any) -> SageMakerDeployer:
    return SageMakerDeployer(plan.stack, wait_delay_s=0.01, wait_max_attempts=3)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return fake_package(tmp_path / "package-v1", "20261127-v1")


@pytest.fixture
def images(aws: str) -> None:
    push_image("rscale-serving", rscale.__version__)


@functools.cache
def sm() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def variant(config_name: str) -> dict[str, Any]:
    return sm().describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"][0]


@functools.cache
def autoscaling_client() -> Any:
    return boto3.client("application-autoscaling", region_name=REGION)


def scaling() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    client = autoscaling_client()
    targets = client.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[RESOURCE])["ScalableTargets"]
    policies = client.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=RESOURCE)["ScalingPolicies"]
    return targets, policies


def tags_of(endpoint: str) -> dict[str, str]:
    arn = sm().describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    return {t["Key"]: t["Value"] for t in sm().list_tags(ResourceArn=arn)["Tags"]}


def test_the_registry_builds_this_deployer_for_each_sagemaker_tier(aws: str) -> None:
    for serving in (SERVERLESS, AUTOSCALING, CUSTOM):
        built = deployer_for(plan_for(serving))
        assert isinstance(built, SageMakerDeployer)
        assert isinstance(built, Deployer)


def test_serverless_create_matches_the_spec_and_uploads_the_package(images: None, package: Path) -> None:
    plan = plan_for(SERVERLESS)
    endpoint = deployer(plan).deploy(plan, package)

    names = DeployNames.of("conversion", plan.hash, package_sha256(package))
    described = sm().describe_endpoint(EndpointName="conversion")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == names.version
    assert variant(names.version)["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 8, "ProvisionedConcurrency": 2}
    model = sm().describe_model(ModelName=names.version)
    assert model["ExecutionRoleArn"] == ROLE  # resolved from ${env:RS_SAGEMAKER_ROLE} at run time
    assert model["PrimaryContainer"]["Image"] == f"{ECR_URI}/rscale-serving:{rscale.__version__}"
    key = model["PrimaryContainer"]["ModelDataUrl"].removeprefix(f"s3://{BUCKET}/")
    assert key.startswith("rscale/models/conversion/") and key.endswith("/model.tar.gz")
    uploaded = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert uploaded == model_tarball(package)
    tags = tags_of("conversion")
    assert tags[TAG_PACKAGE] == package_sha256(package) and tags[TAG_PLAN] == plan.hash

    assert endpoint.tier == "serverless" and endpoint.plan_hash == plan.hash
    assert endpoint.model_version == "20261127-v1"
    assert endpoint.healthy is True
    assert endpoint.url.endswith("/endpoints/conversion/invocations")
    assert endpoint.details["action"] == "created"
    assert {k: endpoint.details[k] for k in ("memory_mb", "max_concurrency", "provisioned_concurrency")} == {
        "memory_mb": 3072, "max_concurrency": 8, "provisioned_concurrency": 2,
    }


def test_autoscaling_create_registers_target_tracking(images: None, package: Path) -> None:
    plan = plan_for(AUTOSCALING)
    endpoint = deployer(plan).deploy(plan, package)

    config = variant(sm().describe_endpoint(EndpointName="conversion")["EndpointConfigName"])
    assert config["InstanceType"] == "ml.g4dn.xlarge" and config["InitialInstanceCount"] == 2
    targets, policies = scaling()
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(2, 5)]
    (policy,) = policies
    assert policy["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 250.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert (tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (600, 30)
    assert endpoint.tier == "autoscaling"
    assert {k: endpoint.details[k] for k in ("instance_type", "instance_count", "min_instances", "max_instances")} == {
        "instance_type": "ml.g4dn.xlarge", "instance_count": 2, "min_instances": 2, "max_instances": 5,
    }
    assert endpoint.details["target_invocations_per_instance"] == 250.0


def test_custom_create_with_an_image_uri(images: None, package: Path) -> None:
    plan = plan_for(CUSTOM_IMAGE)
    push_image("my-server", "7")
    endpoint = deployer(plan).deploy(plan, package)
    model = sm().describe_model(ModelName=endpoint.details["endpoint_config"])
    assert model["PrimaryContainer"]["Image"] == f"{ECR_URI}/my-server:7"
    assert endpoint.tier == "custom" and endpoint.details["instance_count"] == 1


def test_custom_without_image_writes_the_build_context_and_says_how_to_push(aws: str, package: Path, project: Path) -> None:
    plan = plan_for(CUSTOM)
    with pytest.raises(ConfigurationError) as raised:
        deployer(plan).deploy(plan, package)
    tag = package_sha256(package)[:12]
    uri = f"{ECR_URI}/rscale-conversion:{tag}"
    assert uri in str(raised.value) and f"docker push {uri}" in (raised.value.fix or "")
    context = project / "build" / "conversion" / "container"
    assert (context / "Dockerfile").is_file() and (context / "model" / "manifest.json").is_file()
    assert sm().list_models()["Models"] == []  # nothing was created before the image exists

    push_image("rscale-conversion", tag)
    endpoint = deployer(plan).deploy(plan, package)
    assert sm().describe_model(ModelName=endpoint.details["endpoint_config"])["PrimaryContainer"]["Image"] == uri
    config = variant(endpoint.details["endpoint_config"])
    assert config["InstanceType"] == "ml.c5.xlarge" and config["InitialInstanceCount"] == 3


def test_promote_serverless_to_autoscaling_to_custom_updates_one_endpoint(images: None, package: Path) -> None:
    serverless, autoscaling, custom = plan_for(SERVERLESS), plan_for(AUTOSCALING), plan_for(CUSTOM_IMAGE)
    push_image("my-server", "7")
    first = deployer(serverless)
    first.deploy(serverless, package)
    arn = sm().describe_endpoint(EndpointName="conversion")["EndpointArn"]

    second = deployer(autoscaling)
    updates = MotoUpdateEndpoint(second.sagemaker)
    to_autoscaling = DeployNames.of("conversion", autoscaling.hash, package_sha256(package)).version
    updates.expect("conversion", to_autoscaling)
    promoted = second.deploy(autoscaling, package)
    assert promoted.details["action"] == "updated" and promoted.tier == "autoscaling"
    assert sm().describe_endpoint(EndpointName="conversion")["EndpointArn"] == arn  # same endpoint, in place
    assert variant(to_autoscaling)["InstanceType"] == "ml.g4dn.xlarge"
    assert [t["MaxCapacity"] for t in scaling()[0]] == [5]

    third = deployer(custom)
    updates = MotoUpdateEndpoint(third.sagemaker)
    to_custom = DeployNames.of("conversion", custom.hash, package_sha256(package)).version
    updates.expect("conversion", to_custom)
    promoted = third.deploy(custom, package)
    updates.assert_done()
    assert promoted.tier == "custom" and promoted.details["previous_config"] == to_autoscaling
    assert sm().describe_endpoint(EndpointName="conversion")["EndpointConfigName"] == to_custom
    assert scaling() == ([], [])  # the custom tier has no autoscaling; the old target and policy are gone
    assert tags_of("conversion")["rscale:tier"] == "custom"
    # the first (serverless) version was pruned; the one before the current stays for a rollback
    configs = {c["EndpointConfigName"] for c in sm().list_endpoint_configs()["EndpointConfigs"]}
    assert configs == {to_autoscaling, to_custom}


def test_redeploying_the_same_plan_and_package_is_a_no_op(images: None, package: Path) -> None:
    plan = plan_for(SERVERLESS)
    deployer(plan).deploy(plan, package)
    again = deployer(plan)
    updates = MotoUpdateEndpoint(again.sagemaker)  # no call expected: any update_endpoint would fail the stubber
    endpoint = again.deploy(plan, package)
    assert endpoint.details["action"] == "unchanged"
    assert updates.calls == []
    assert len(sm().list_endpoint_configs()["EndpointConfigs"]) == 1
    assert len(sm().list_models()["Models"]) == 1


def test_a_retrained_package_of_the_same_plan_is_a_new_version(images: None, package: Path, tmp_path: Path) -> None:
    plan = plan_for(SERVERLESS)
    deployer(plan).deploy(plan, package)
    retrained = fake_package(tmp_path / "package-v2", "20261128-v2", weights=b"new weights")
    again = deployer(plan)
    updates = MotoUpdateEndpoint(again.sagemaker)
    updates.expect("conversion", DeployNames.of("conversion", plan.hash, package_sha256(retrained)).version)
    endpoint = again.deploy(plan, retrained)
    assert endpoint.model_version == "20261128-v2" and endpoint.details["action"] == "updated"


def test_a_failed_update_restores_the_previous_config_and_its_scaling(images: None, package: Path) -> None:
    autoscaling, custom = plan_for(AUTOSCALING), plan_for(CUSTOM_IMAGE)
    push_image("my-server", "7")
    deployer(autoscaling).deploy(autoscaling, package)
    before = sm().describe_endpoint(EndpointName="conversion")["EndpointConfigName"]

    failing = deployer(custom)
    updates = MotoUpdateEndpoint(failing.sagemaker)
    new = DeployNames.of("conversion", custom.hash, package_sha256(package)).version
    updates.expect("conversion", new, status="Failed", reason="The primary container did not pass the ping health check.")
    updates.expect("conversion", before)  # the rollback
    with pytest.raises(DeployFailed) as raised:
        failing.deploy(custom, package)
    updates.assert_done()
    message = str(raised.value)
    assert "did not pass the ping health check" in message
    assert f"serves the previous config {before} again" in message
    described = sm().describe_endpoint(EndpointName="conversion")
    assert described["EndpointConfigName"] == before and described["EndpointStatus"] == "InService"
    targets, policies = scaling()
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(2, 5)]
    assert [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies] == [250.0]
    assert new not in {c["EndpointConfigName"] for c in sm().list_endpoint_configs()["EndpointConfigs"]}
    assert new not in {m["ModelName"] for m in sm().list_models()["Models"]}


def test_a_failed_smoke_request_rolls_back(images: None, package: Path) -> None:
    from botocore.stub import Stubber

    serverless, autoscaling = plan_for(SERVERLESS), plan_for(AUTOSCALING)
    deployer(serverless).deploy(serverless, package)
    before = sm().describe_endpoint(EndpointName="conversion")["EndpointConfigName"]

    failing = deployer(autoscaling)
    updates = MotoUpdateEndpoint(failing.sagemaker)
    updates.expect("conversion", DeployNames.of("conversion", autoscaling.hash, package_sha256(package)).version)
    updates.expect("conversion", before)
    runtime = Stubber(failing.client("sagemaker-runtime"))
    runtime.add_client_error("invoke_endpoint", service_error_code="ModelError", service_message="boom", http_status_code=424)
    with runtime, pytest.raises(DeployFailed) as raised:
        failing.deploy(autoscaling, package)
    assert "smoke request failed" in str(raised.value) and "ModelError" in str(raised.value)
    assert sm().describe_endpoint(EndpointName="conversion")["EndpointConfigName"] == before
    assert scaling() == ([], [])  # the new tier's scaling was removed with it


def test_a_failed_first_deploy_deletes_the_new_endpoint(images: None, package: Path) -> None:
    from botocore.stub import Stubber

    plan = plan_for(SERVERLESS)
    failing = deployer(plan)
    runtime = Stubber(failing.client("sagemaker-runtime"))
    runtime.add_client_error("invoke_endpoint", service_error_code="ModelError", http_status_code=424)
    with runtime, pytest.raises(DeployFailed) as raised:
        failing.deploy(plan, package)
    assert "the new endpoint was deleted" in str(raised.value)
    assert failing.status("conversion") is None
    assert sm().list_endpoint_configs()["EndpointConfigs"] == [] and sm().list_models()["Models"] == []


def test_status_predict_and_undeploy(images: None, package: Path, project: Path) -> None:
    from rscale.serving.endpoint import deployer_for_name, read_state

    plan = plan_for(AUTOSCALING)
    tier = deployer(plan)
    assert tier.status("conversion") is None
    assert tier.undeploy("conversion") is False
    tier.deploy(plan, package)

    # the record under .rs/serving/ lets `rs status NAME` find this tier, and holds references, not values
    record = read_state("conversion")
    assert record is not None and record["tier"] == "autoscaling" and record["package_dir"] == str(package.resolve())
    assert "${env:RS_SAGEMAKER_ROLE}" in json.dumps(record) and ROLE not in json.dumps(record)
    found = deployer_for_name("conversion")
    assert isinstance(found, SageMakerDeployer)
    status = found.status("conversion")
    assert status is not None and status.tier == "autoscaling" and status.details["instance_type"] == "ml.g4dn.xlarge"

    queue_invocation_results(aws_url(), {"predictions": [{"probability": 0.25, "label": 0}], "model_version": "20261127-v1"})
    answer = tier.predict("conversion", {"n_views": 3, "device": "mobile"})
    assert answer["predictions"][0]["probability"] == 0.25

    assert tier.undeploy("conversion") is True
    assert tier.status("conversion") is None
    assert read_state("conversion") is None
    assert scaling() == ([], [])
    assert sm().list_endpoint_configs()["EndpointConfigs"] == [] and sm().list_models()["Models"] == []
    assert tier.undeploy("conversion") is False


def test_predict_sends_json_through_sagemaker_runtime(images: None, package: Path) -> None:
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    plan = plan_for(SERVERLESS)
    tier = deployer(plan)
    runtime = Stubber(tier.client("sagemaker-runtime"))
    body = json.dumps({"predictions": [{"label": 1}]}).encode()
    runtime.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
        expected_params={
            "EndpointName": "conversion", "ContentType": "application/json", "Accept": "application/json",
            "Body": json.dumps({"instances": [{"n_views": 1}]}).encode(),
        },
    )
    with runtime:
        assert tier.predict("conversion", {"instances": [{"n_views": 1}]}) == {"predictions": [{"label": 1}]}


def test_an_endpoint_rscale_did_not_create_is_left_alone(images: None, package: Path) -> None:
    plan = plan_for(SERVERLESS)
    client = sm()
    client.create_model(ModelName="someone-else", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": f"{ECR_URI}/x:1"})
    client.create_endpoint_config(
        EndpointConfigName="someone-else",
        ProductionVariants=[{"VariantName": "v", "ModelName": "someone-else", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
    )
    client.create_endpoint(EndpointName="conversion", EndpointConfigName="someone-else")
    with pytest.raises(ConfigurationError, match="not deployed by rscale"):
        deployer(plan).deploy(plan, package)
    with pytest.raises(ConfigurationError):
        deployer(plan).undeploy("conversion")
    assert client.describe_endpoint(EndpointName="conversion")["EndpointConfigName"] == "someone-else"


def test_autoscaling_back_to_serverless_is_refused_before_any_change(images: None, package: Path) -> None:
    serverless, autoscaling = plan_for(SERVERLESS), plan_for(AUTOSCALING)
    deployer(autoscaling).deploy(autoscaling, package)
    with pytest.raises(ConfigurationError, match="cannot update a real-time endpoint to serverless") as raised:
        deployer(serverless).deploy(serverless, package)
    assert "rs undeploy conversion" in (raised.value.fix or "")
    assert len(sm().list_endpoint_configs()["EndpointConfigs"]) == 1


def test_missing_stack_settings_name_the_fix(images: None, package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_for(SERVERLESS)
    monkeypatch.delenv("RS_SAGEMAKER_ROLE")
    with pytest.raises(ConfigurationError) as raised:
        deployer(plan).deploy(plan, package)
    assert "RS_SAGEMAKER_ROLE" in str(raised.value) and "export RS_SAGEMAKER_ROLE" in (raised.value.fix or "")
    stack = plan.stack.model_copy(update={"serving": plan.stack.serving.model_copy(update={"s3_prefix": None})})
    with pytest.raises(RscaleError, match="s3_prefix"):
        SageMakerDeployer(stack).deploy(plan, package)


def aws_url() -> str:
    import os

    return os.environ["AWS_ENDPOINT_URL"]
