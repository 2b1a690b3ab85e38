"""`pip install "rscale[aws]"` brings what the aws stack's ZenML components need: every requirement of ZenML's
`aws` integration is in the extra, with the same bounds, so `rs stack show aws` finds the SageMaker SDK v2.

The co-install was proven with `pip install --dry-run -e ".[dev]"` against this environment's pins (see the
extra's comment for the one requirement, s3fs, that cannot co-install with boto3 1.44)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from typer.testing import CliRunner

from rscale.stacks.integrations import ZENML_INTEGRATION_REQUIREMENTS

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _extra(name: str) -> dict[str, Requirement]:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    return {Requirement(text).name.lower(): Requirement(text) for text in extras[name]}


def test_the_aws_extra_holds_zenmls_aws_integration_requirements_with_their_bounds() -> None:
    extra = _extra("aws")
    for text in ZENML_INTEGRATION_REQUIREMENTS["aws"]:
        wanted = Requirement(text)
        assert wanted.name.lower() in extra, f"rscale[aws] lacks {text}"
        have = extra[wanted.name.lower()].specifier
        for version in ("2.237.3", "2.257.7", "3.0.0", "36.0.3", "2021.1"):
            if wanted.specifier.contains(version, prereleases=True) != have.contains(version, prereleases=True):
                raise AssertionError(f"rscale[aws] pins {wanted.name}{have}, ZenML's integration wants {text}")
    assert "boto3" in extra


@pytest.mark.skipif(importlib.util.find_spec("sagemaker") is None, reason='the aws extra is not installed here (pip install -e ".[aws]")')
def test_with_the_aws_extra_installed_stack_show_finds_the_sagemaker_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    from rscale.cli.app import app
    from rscale.cli.main import main  # noqa: F401

    result = CliRunner().invoke(app, ["stack", "show", "aws"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "ZenML `aws` integration" not in output  # every part the aws integration serves is installed
