"""`rs stack ...` in-process: list, show, up (twice), use, build-context; every command has help."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_env import AWS_ENV
from typer.testing import CliRunner

import rscale.cli.stack  # noqa: F401  (registers `rs stack`)
from rscale.cli.app import app, console
from rscale.cli.stack import stack_app


@pytest.fixture
def stacks(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's own stacks/ folder, so tests may add stacks to it."""
    monkeypatch.setenv("RS_STACKS_DIR", str(project / "stacks"))
    monkeypatch.setattr(console, "width", 250)  # tables do not wrap mid-word
    for key in AWS_ENV:
        monkeypatch.delenv(key, raising=False)
    return project / "stacks"


def rs(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_every_stack_command_has_help() -> None:
    for command in stack_app.registered_commands:
        assert command.callback is not None and (command.callback.__doc__ or "").strip(), command.name


def test_list_marks_the_active_stack_and_unset_variables(stacks: Path) -> None:
    code, out = rs("stack", "list")
    assert code == 0, out
    assert "* local" in " ".join(out.split())
    assert "unset: RS_SAGEMAKER_ROLE" in out
    code, out = rs("stack", "use", "aws")
    assert code == 0 and "active stack: aws" in out and "RS_S3_BUCKET" in out
    assert "* aws" in " ".join(rs("stack", "list")[1].split())


def test_use_rejects_an_unknown_stack(stacks: Path) -> None:
    code, out = rs("stack", "use", "nope")
    assert code == 2 and "no stack named `nope`" in out


def test_up_without_the_environment_names_every_variable(stacks: Path) -> None:
    code, out = rs("stack", "up", "aws")
    assert code == 2
    assert "RS_SAGEMAKER_ROLE, RS_S3_BUCKET, RS_ECR_URI, AWS_REGION" in " ".join(out.split())


def test_up_registers_then_reports_nothing_to_do(stacks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rscale.stacks.integrations as integrations

    # an environment without the aws extra: neither sagemaker nor s3fs (the dev install has sagemaker)
    real = integrations._installed
    monkeypatch.setattr(integrations, "_installed", lambda module: module not in {"sagemaker", "s3fs"} and real(module))
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    (stacks / "aws-cli.yaml").write_text((stacks / "aws.yaml").read_text().replace("name: aws\n", "name: aws-cli\n"))
    code, out = rs("stack", "up", "aws-cli")
    assert code == 0, out
    assert "created step_operator `aws-cli-step-operator-sagemaker` (sagemaker)" in out
    assert "created stack `aws-cli`" in out
    flat = " ".join(out.split())
    assert "missing: step_operator (sagemaker) needs the ZenML `aws` integration" in flat
    assert "install: zenml integration install aws -y" in flat
    assert "install: zenml integration install s3 -y" in flat
    assert "missing: a ZenML server" in flat
    code, out = rs("stack", "up", "aws-cli", "--use")
    assert code == 0 and "stack `aws-cli` is up to date (5 components)" in out and "active stack: aws-cli" in out
    code, out = rs("stack", "show", "aws-cli")
    assert code == 0, out
    flat = " ".join(out.split())
    assert "ZenML: registered, up to date" in flat
    assert "step_operator: sagemaker as `aws-cli-step-operator-sagemaker` role=${env:RS_SAGEMAKER_ROLE}" in flat
    assert "env RS_S3_BUCKET: set" in flat
    assert "4 GPU: ml.g5.12xlarge" in flat
    assert AWS_ENV["RS_SAGEMAKER_ROLE"] not in out  # show prints references, never the values


def test_show_says_when_the_yaml_moved_on(stacks: Path) -> None:
    (stacks / "show-local.yaml").write_text((stacks / "local.yaml").read_text().replace("name: local", "name: show-local"))
    assert rs("stack", "show", "show-local")[1].count("not registered") == 1
    assert rs("stack", "up", "show-local")[0] == 0
    (stacks / "show-local.yaml").write_text(
        (stacks / "show-local.yaml").read_text().replace("path: .rs/artifacts", "path: .rs/other-artifacts")
    )
    out = " ".join(rs("stack", "show", "show-local")[1].split())
    assert "differs from the YAML" in out and "rs stack up show-local" in out
    assert "updated artifact_store `show-local-artifact-store-local` (local)" in rs("stack", "up", "show-local")[1]


def test_build_context_writes_the_files(stacks: Path, tmp_path: Path) -> None:
    code, out = rs("stack", "build-context", "aws", "--out", str(tmp_path / "image"))
    assert code == 0, out
    assert (tmp_path / "image" / "Dockerfile").exists() and (tmp_path / "image" / "requirements.txt").exists()
    assert "docker build -t ${env:RS_ECR_URI}/rscale:latest" in " ".join(out.split())
