"""What a plan on the aws stack asks of ZenML: step operator, SageMaker settings, Docker settings, build context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from zenml import pipeline, step

from rscale.compiler.compilation import compile_spec
from rscale.compiler.plan import Plan
from rscale.compiler.stack import load_stack
from rscale.stacks import TRAIN_STEP, docker_settings, pipeline_options, step_image, write_build_context
from rscale.stacks.containers import image_requirements, project_requirements
from rscale.stacks.integrations import (
    ZENML_INTEGRATION_REQUIREMENTS,
    integration_problems,
    missing_integrations,
    zenml_integrations_of,
)


@step
def train_model() -> int:
    return 1


@pipeline
def one_step_pipeline() -> None:
    train_model()


def _plan(repo: Path, monkeypatch: pytest.MonkeyPatch, stack: str, *overrides: str) -> Plan:
    monkeypatch.chdir(repo)
    return compile_spec("specs/recs.yaml", list(overrides), stack=stack, offline=True).plans[0]


def test_the_train_step_name_is_the_pipeline_s() -> None:
    from rscale.stages.model import train_model as pipeline_train_step

    assert pipeline_train_step.name == TRAIN_STEP


def test_local_plans_need_no_options(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pipeline_options(_plan(repo, monkeypatch, "local")) == {}
    assert pipeline_options(_plan(repo, monkeypatch, "gpu", "train.gpus=1")) == {}


def test_aws_plan_runs_train_on_the_step_operator(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = pipeline_options(_plan(repo, monkeypatch, "aws", "train.gpus=4"))
    assert json.loads(json.dumps(options)) == options  # plain data: emit writes it into pipeline.py
    train_options = options["steps"][TRAIN_STEP]
    assert train_options["step_operator"] == "aws-step-operator-sagemaker"
    estimator = train_options["settings"]["step_operator.sagemaker"]["estimator_args"]
    assert estimator == {"instance_type": "ml.g5.12xlarge", "instance_count": 1, "volume_size": 50, "max_run": 86400}

    from zenml.integrations.aws.flavors.sagemaker_step_operator_flavor import SagemakerStepOperatorSettings
    from zenml.utils.settings_utils import is_valid_setting_key

    assert is_valid_setting_key("step_operator.sagemaker")
    settings = SagemakerStepOperatorSettings.model_validate(train_options["settings"]["step_operator.sagemaker"])
    assert settings.estimator_args["instance_type"] == "ml.g5.12xlarge"
    configured = one_step_pipeline.with_options(**options)
    assert configured.configuration.settings["docker"].local_project_install_command == "pip install --no-deps ."


def test_docker_settings_pin_the_project_and_the_integrations(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(repo, monkeypatch, "aws", "train.gpus=1")
    settings = docker_settings(plan)
    from zenml.config import DockerSettings

    validated = DockerSettings.model_validate(settings)
    requirements = list(validated.requirements or [])
    by_name = {Requirement(r).name: r for r in requirements}
    assert by_name["torch"] == "torch==2.13.0"  # the public version: the image gets the CUDA build, not +cpu
    assert by_name["zenml"] == "zenml[local]==0.98.0"
    assert by_name["pytorch-lightning"] == "pytorch-lightning==2.6.6"
    assert by_name["boto3"].startswith("boto3==1.44.")  # rscale[aws], for the SageMaker endpoints
    sagemaker = Requirement(by_name["sagemaker"]).specifier  # the step operator's integration, via rscale[aws]
    assert sagemaker.contains("2.257.7") and not sagemaker.contains("3.0.0") and not sagemaker.contains("2.237.2")
    assert by_name["s3fs"].startswith("s3fs")  # the artifact store's integration
    assert "pytest" not in by_name and "snowflake-snowpark-python" not in by_name
    assert validated.install_stack_requirements is False


def test_extras_follow_the_stack_and_the_spec() -> None:
    assert any(r.startswith("snowflake-snowpark-python==") for r in project_requirements(["snowflake"]))
    cloud = project_requirements(["cloud"])  # a meta extra expands to the extras it names
    assert {"boto3", "neptune", "snowflake-snowpark-python"} <= {r.split("=")[0].split("<")[0] for r in cloud}
    assert not any(r.startswith("boto3") for r in image_requirements(load_stack("local")))


def test_build_context_holds_dockerfile_requirements_and_source(tmp_path: Path) -> None:
    stack = load_stack("aws")
    files = write_build_context(step_image(stack), tmp_path / "ctx")
    assert [f.name for f in files] == ["Dockerfile", "requirements.txt", "rscale-src"]
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert dockerfile.splitlines()[2] == "FROM python:3.11-slim"
    lines = dockerfile.splitlines()
    # the pinned requirements first, then rscale itself without pulling anything unpinned
    assert lines.index("RUN pip install --no-cache-dir -r requirements.txt") < lines.index(
        "RUN pip install --no-cache-dir --no-deps ./rscale-src"
    )
    assert "ENTRYPOINT" not in dockerfile and "/opt/ml/model" not in dockerfile  # a step image, not a server
    lines = [ln for ln in (tmp_path / "ctx" / "requirements.txt").read_text().splitlines() if not ln.startswith("#")]
    assert lines == image_requirements(stack)
    assert (tmp_path / "ctx" / "rscale-src" / "rscale" / "stacks" / "containers.py").exists()
    assert not list((tmp_path / "ctx" / "rscale-src").rglob("__pycache__"))
    # Writing again replaces the copy rather than nesting it.
    write_build_context(step_image(stack), tmp_path / "ctx")
    assert not (tmp_path / "ctx" / "rscale-src" / "rscale" / "rscale").exists()


def test_the_step_and_serving_images_pin_alike(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One way of pinning: a distribution both images install gets the same line in both (CPU torch aside)."""
    from rscale.stacks.containers import SERVING_DISTRIBUTIONS, serving_image

    plan = _plan(repo, monkeypatch, "aws", "serving={tier: custom, build: {}, instance_type: ml.g5.xlarge}")
    serving = {Requirement(r).name: r for r in serving_image(plan, None).requirements}
    step = {Requirement(r).name: r for r in image_requirements(plan.stack, plan)}
    assert set(SERVING_DISTRIBUTIONS) <= set(serving)
    for name in SERVING_DISTRIBUTIONS:
        assert serving[name] == step[name]
    assert serving["torch"] == "torch==2.13.0"  # pyproject's pin, on a GPU instance the default (CUDA) wheel


def test_our_integration_table_matches_zenml() -> None:
    from zenml.integrations.registry import integration_registry

    for name, requirements in ZENML_INTEGRATION_REQUIREMENTS.items():
        assert integration_registry.integrations[name].REQUIREMENTS == requirements


def test_missing_integrations_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import rscale.stacks.integrations as integrations

    # an environment without the aws extra: neither sagemaker nor s3fs (the dev install has sagemaker)
    real = integrations._installed
    monkeypatch.setattr(integrations, "_installed", lambda module: module not in {"sagemaker", "s3fs"} and real(module))
    aws = load_stack("aws")
    assert zenml_integrations_of(aws) == ["aws", "s3"]
    assert missing_integrations(load_stack("local")) == []
    missing = {m.provider: m for m in missing_integrations(aws)}
    assert missing["the ZenML `aws` integration"].missing_modules() == ["sagemaker"]
    assert missing["the ZenML `s3` integration"].missing_modules() == ["s3fs"]
    problems = integration_problems(aws, serving_tiers=["local"])
    assert len(problems) == 2
    assert problems[0].message == (
        "stack `aws`: step_operator (sagemaker) needs the ZenML `aws` integration (not installed: sagemaker)"
    )
    assert (problems[0].fix or "").startswith("zenml integration install aws -y")
    assert all(p.severity == "error" for p in problems)
