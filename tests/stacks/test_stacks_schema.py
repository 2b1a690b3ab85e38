"""Stack YAML: the aws stack's references, the GPU -> instance table, and the compiler's checks against a stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscale.compiler.compilation import compile_spec
from rscale.compiler.errors import SpecError
from rscale.compiler.plan import _instance_for
from rscale.compiler.stack import DEFAULT_GPU_INSTANCES, load_stack
from rscale.errors import ConfigurationError
from rscale.references import missing_variables, resolve_stack


def test_every_stack_in_the_repo_loads(repo: Path) -> None:
    names = sorted(p.stem for p in (repo / "stacks").glob("*.yaml"))
    assert {"local", "aws", "gpu"} <= set(names)
    for name in names:
        assert load_stack(name).name == name


def test_aws_stack_has_the_reasonable_scale_parts() -> None:
    stack = load_stack("aws")
    assert stack.orchestrator.flavor == "local"
    assert stack.step_operator is not None and stack.step_operator.role == "${env:RS_SAGEMAKER_ROLE}"
    assert stack.artifact_store.flavor == "s3"
    assert stack.container_registry is not None and stack.container_registry.flavor == "aws"
    assert stack.serving.tiers == ["local", "serverless", "autoscaling", "custom"]
    assert stack.env_references() == ["RS_SAGEMAKER_ROLE", "RS_S3_BUCKET", "RS_ECR_URI", "AWS_REGION"]


def test_references_resolve_from_the_environment(aws_env: dict[str, str]) -> None:
    resolved = resolve_stack(load_stack("aws"))
    assert resolved.step_operator is not None
    assert resolved.step_operator.role == aws_env["RS_SAGEMAKER_ROLE"]
    assert resolved.artifact_store.path == "s3://rscale-test-bucket/rscale/artifacts"
    assert resolved.serving.region == "eu-west-1"
    assert resolved.env_references() == []


def test_missing_variables_are_all_named(no_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RS_S3_BUCKET", "only-this-one")
    stack = load_stack("aws")
    assert missing_variables(stack) == ["RS_SAGEMAKER_ROLE", "RS_ECR_URI", "AWS_REGION"]
    with pytest.raises(ConfigurationError) as caught:
        resolve_stack(stack)
    message = str(caught.value)
    assert "stack `aws`" in message
    assert "`step_operator.role`" in message and "`container_registry.uri`" in message  # where they are
    assert "`artifact_store.path`" not in message  # RS_S3_BUCKET is set, so its keys are not named
    for name in ("RS_SAGEMAKER_ROLE", "RS_ECR_URI", "AWS_REGION"):
        assert name in message and name in (caught.value.fix or "")
    assert "only-this-one" not in message


def test_a_variable_that_breaks_a_field_is_reported_without_its_value(aws_env: dict[str, str], tmp_path: Path) -> None:
    stack = load_stack("aws").model_copy(
        update={"artifact_store": load_stack("aws").artifact_store.model_copy(update={"path": "${env:RS_S3_BUCKET}"})}
    )
    with pytest.raises(ConfigurationError) as caught:
        resolve_stack(stack)
    assert "`artifact_store`" in str(caught.value) and "${env:RS_S3_BUCKET}" in str(caught.value)
    assert "rscale-test-bucket" not in str(caught.value)


@pytest.mark.parametrize(
    ("gpus", "instance"),
    [(0, "ml.m5.xlarge"), (1, "ml.g5.xlarge"), (2, "ml.g5.12xlarge"), (4, "ml.g5.12xlarge"), (5, "ml.p4d.24xlarge"),
     (8, "ml.p4d.24xlarge"), (9, None)],
)
def test_gpu_count_maps_to_the_smallest_instance_with_enough_gpus(gpus: int, instance: str | None) -> None:
    assert _instance_for(gpus, DEFAULT_GPU_INSTANCES) == instance


def test_compiling_for_aws_needs_no_environment(no_aws_env: None, repo: Path, monkeypatch) -> None:
    monkeypatch.chdir(repo)
    plan = compile_spec("specs/recs.yaml", ["train.gpus=4"], stack="aws", offline=True).plans[0]
    assert plan.hardware.instance_type == "ml.g5.12xlarge"
    # the train step runs on the step operator, and DDP over 4 GPUs runs in a child process there
    assert (plan.hardware.runs_on, plan.hardware.launcher) == ("step_operator", "subprocess")
    assert (plan.hardware.accelerator, plan.hardware.devices, plan.hardware.strategy) == ("gpu", 4, "ddp")
    # References stay references: plan.json never carries the account's values.
    assert plan.stack.step_operator is not None and plan.stack.step_operator.role == "${env:RS_SAGEMAKER_ROLE}"


def test_the_spec_can_name_the_instance(repo: Path, monkeypatch) -> None:
    monkeypatch.chdir(repo)
    plan = compile_spec("specs/recs.yaml", ["train.gpus=1", "train.instance_type=ml.g6.xlarge"], stack="aws", offline=True).plans[0]
    assert plan.hardware.instance_type == "ml.g6.xlarge"


def test_the_stack_can_change_the_table(project: Path) -> None:
    text = (project / "stacks" / "aws.yaml").read_text().replace("name: aws", "name: aws-p5")
    text = text.replace("8: ml.p4d.24xlarge}", "8: ml.p5.48xlarge}")
    (project / "stacks" / "aws-p5.yaml").write_text(text)
    plan = compile_spec("specs/recs.yaml", ["train.gpus=8"], stack="stacks/aws-p5.yaml", offline=True).plans[0]
    assert plan.hardware.instance_type == "ml.p5.48xlarge"


def test_gpus_on_a_stack_without_a_gpu_runner_fail_naming_the_stack_and_fix(repo: Path, monkeypatch) -> None:
    monkeypatch.chdir(repo)
    with pytest.raises(SpecError) as caught:
        compile_spec("specs/recs.yaml", ["train.gpus=2"], stack="local", offline=True)
    text = caught.value.render()
    assert "stack `local`" in text and "train.gpus" in text
    assert "set train.gpus: 0" in text and "--stack" in text


def test_local_gpu_stack_trains_in_process_on_one_gpu(repo: Path, monkeypatch) -> None:
    monkeypatch.chdir(repo)
    plan = compile_spec("specs/recs.yaml", ["train.gpus=1", "train.precision=bf16-mixed"], stack="gpu", offline=True).plans[0]
    assert (plan.hardware.accelerator, plan.hardware.devices, plan.hardware.launcher) == ("gpu", 1, "in_process")
    assert plan.hardware.instance_type is None
    with pytest.raises(SpecError) as caught:
        compile_spec("specs/recs.yaml", ["train.gpus=2"], stack="gpu", offline=True)
    assert "stack `gpu` has 1 GPU" in caught.value.render()


def test_a_tier_the_stack_cannot_deploy_is_an_error(repo: Path, monkeypatch) -> None:
    monkeypatch.chdir(repo)
    with pytest.raises(SpecError) as caught:
        compile_spec("specs/recs.yaml", ["serving.tier=serverless"], stack="local", offline=True)
    text = caught.value.render()
    assert "stack `local`" in text and "--stack aws" in text


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"artifact_store": {"flavor": "local", "path": ".rs/artifacts"}}, "shared `artifact_store`"),
        ({"container_registry": None}, "needs a `container_registry`"),
        ({"artifact_store": {"flavor": "s3", "path": "bucket/prefix"}}, "s3://bucket/prefix"),
        ({"orchestrator": {"flavor": "sagemaker"}}, "execution_role"),
    ],
)
def test_stacks_that_cannot_work_are_rejected_on_load(project: Path, patch: dict, message: str) -> None:
    from ruamel.yaml import YAML

    yaml = YAML()
    tree = yaml.load((project / "stacks" / "aws.yaml").read_text())
    tree.update(patch)
    tree["name"] = "broken"
    with (project / "stacks" / "broken.yaml").open("w") as out:
        yaml.dump(tree, out)
    with pytest.raises(SpecError) as caught:
        load_stack("stacks/broken.yaml")
    assert message in caught.value.render()
