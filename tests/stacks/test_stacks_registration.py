"""Registering stacks in ZenML (the session's SQLite store under .rs/): create, no-op, update, activate."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_env import AWS_ENV

from rscale.compiler.stack import load_stack
from rscale.errors import ConfigurationError
from rscale.stacks import active_stack_name, ensure_registered, register, set_active_stack
from rscale.stacks.components import FINGERPRINT_LABEL
from rscale.stacks.registration import is_current, registered_components, registered_file


def _copy_stack(project: Path, source: str, name: str) -> Path:
    text = (project / "stacks" / f"{source}.yaml").read_text().replace(f"name: {source}\n", f"name: {name}\n")
    path = project / "stacks" / f"{name}.yaml"
    path.write_text(text)
    return path


def test_up_registers_every_component_then_changes_nothing(project: Path, aws_env: dict[str, str]) -> None:
    path = _copy_stack(project, "aws", "aws-idem")
    first = register(load_stack(str(path)))
    assert first.changes == [
        "created orchestrator `aws-idem-orchestrator-local` (local)",
        "created step_operator `aws-idem-step-operator-sagemaker` (sagemaker)",
        "created artifact_store `aws-idem-artifact-store-s3` (s3)",
        "created container_registry `aws-idem-container-registry-aws` (aws)",
        "created image_builder `aws-idem-image-builder-local` (local)",
        "created stack `aws-idem`",
    ]
    second = register(load_stack(str(path)))
    assert second.changes == [] and second.fingerprint == first.fingerprint

    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    model = client.get_stack("aws-idem", allow_name_prefix_match=False)
    assert model.labels[FINGERPRINT_LABEL] == first.fingerprint
    operator = client.get_stack_component(StackComponentType.STEP_OPERATOR, "aws-idem-step-operator-sagemaker")
    assert operator.configuration["role"] == AWS_ENV["RS_SAGEMAKER_ROLE"]
    assert operator.configuration["bucket"] == "rscale-test-bucket"
    store = client.get_stack_component(StackComponentType.ARTIFACT_STORE, "aws-idem-artifact-store-s3")
    assert store.configuration["path"] == "s3://rscale-test-bucket/rscale/artifacts"


def test_editing_the_yaml_updates_the_stack(project: Path, aws_env: dict[str, str]) -> None:
    path = _copy_stack(project, "aws", "aws-edit")
    register(load_stack(str(path)))
    # Drop the bucket from the step operator, and swap the image builder for AWS CodeBuild.
    text = path.read_text().replace("  bucket: ${env:RS_S3_BUCKET}\n", "")
    text = text.replace("image_builder: {flavor: local}", "image_builder: {flavor: aws, code_build_project: rs-images}")
    path.write_text(text)
    changed = register(load_stack(str(path)))
    assert changed.changes == [
        "updated step_operator `aws-edit-step-operator-sagemaker` (sagemaker)",
        "created image_builder `aws-edit-image-builder-aws` (aws)",
        "updated stack `aws-edit`",
    ]
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    operator = client.get_stack_component(StackComponentType.STEP_OPERATOR, "aws-edit-step-operator-sagemaker")
    assert "bucket" not in operator.configuration  # a key removed from the YAML is removed in ZenML
    names = {c.type: c.name for c in registered_components("aws-edit") or []}
    assert names["image_builder"] == "aws-edit-image-builder-aws"
    assert register(load_stack(str(path))).changes == []


def test_a_changed_environment_value_updates_the_component(
    project: Path, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy_stack(project, "aws", "aws-env")
    register(load_stack(str(path)))
    monkeypatch.setenv("RS_SAGEMAKER_ROLE", "arn:aws:iam::123456789012:role/other")
    assert not is_current(load_stack(str(path)))
    changes = register(load_stack(str(path))).changes
    assert "updated step_operator `aws-env-step-operator-sagemaker` (sagemaker)" in changes


def test_missing_variables_stop_registration_before_zenml(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in AWS_ENV:
        monkeypatch.delenv(key, raising=False)
    path = _copy_stack(project, "aws", "aws-noenv")
    with pytest.raises(ConfigurationError) as caught:
        register(load_stack(str(path)))
    assert "RS_SAGEMAKER_ROLE, RS_S3_BUCKET, RS_ECR_URI, AWS_REGION" in str(caught.value)
    assert registered_components("aws-noenv") is None


def test_ensure_registered_records_and_reuses_the_fingerprint(project: Path) -> None:
    stack = load_stack("local")
    assert ensure_registered(stack, activate=True) == "local"
    assert is_current(stack)
    assert "local" in registered_file().read_text()
    from zenml.client import Client

    assert Client().active_stack_model.name == "local"
    path = registered_file()
    before = path.stat().st_mtime_ns
    assert ensure_registered(stack) == "local"
    assert path.stat().st_mtime_ns == before  # nothing changed: ZenML was not asked, the record not rewritten
    components = {c.type: c for c in registered_components("local") or []}
    assert set(components) == {"orchestrator", "artifact_store"}
    assert components["artifact_store"].flavor == "local"


def test_use_records_the_active_stack(project: Path) -> None:
    assert active_stack_name() == "local"
    assert set_active_stack("aws") == "aws"
    assert (project / ".rs" / "active_stack").read_text().strip() == "aws"
    assert active_stack_name() == "aws"
    from rscale.compiler.errors import SpecError

    with pytest.raises(SpecError) as caught:
        set_active_stack("awz")
    assert "no stack named `awz`" in caught.value.render() and "aws" in (caught.value.problems[0].fix or "")
    assert active_stack_name() == "aws"
