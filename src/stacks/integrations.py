"""What a stack needs installed, checked without importing ZenML (importlib.util.find_spec only).

Each component flavor, warehouse and serving tier maps to the ZenML integration or rscale extra that
carries its code, the modules that prove it is installed, and the command that installs it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass

from rscale.compiler.errors import Problem
from rscale.compiler.stack import StackSpec

# ZenML 0.98's own requirement lists for the integrations our stacks use (tests compare them with
# zenml.integrations.registry, so a ZenML upgrade that changes them fails a test, not a SageMaker job).
ZENML_INTEGRATION_REQUIREMENTS: dict[str, list[str]] = {
    "aws": ["sagemaker>=2.237.3,<3.0.0", "kubernetes", "aws-profile-manager", "pytz>=2021.1"],
    "s3": ["s3fs>2022.3.0,!=2025.3.1", "boto3", "aws-profile-manager"],
}
# The module whose presence shows an integration's code can run (what its flavors import first).
INTEGRATION_MODULES: dict[str, tuple[str, ...]] = {"aws": ("sagemaker", "boto3"), "s3": ("s3fs", "boto3")}


@dataclass(frozen=True)
class Requirement:
    """One thing a stack needs installed: for which part, from which integration or extra, and how."""

    part: str  # e.g. "step_operator (sagemaker)"
    provider: str  # "zenml integration aws" or "rscale[snowflake]"
    modules: tuple[str, ...]
    install: str

    def missing_modules(self) -> list[str]:
        return [m for m in self.modules if not _installed(m)]

    def describe(self) -> str:
        return f"{self.part} needs {self.provider} (not installed: {', '.join(self.missing_modules())})"


def _zenml(name: str, part: str) -> Requirement:
    pins = " ".join(f'"{r}"' for r in ZENML_INTEGRATION_REQUIREMENTS.get(name, []))
    install = f"zenml integration install {name} -y" + (f"  (or: pip install {pins})" if pins else "")
    return Requirement(part, f"the ZenML `{name}` integration", INTEGRATION_MODULES.get(name, ()), install)


def _extra(extra: str, part: str, modules: tuple[str, ...]) -> Requirement:
    return Requirement(part, f"rscale[{extra}]", modules, f'pip install "rscale[{extra}]"')


def requirements_of(stack: StackSpec, serving_tiers: Iterable[str] | None = None) -> list[Requirement]:
    """Everything the stack needs installed on the machine that runs `rs run`; `serving_tiers` narrows
    the serving part to the tiers a spec uses (default: every tier the stack serves)."""
    needs: list[Requirement] = []
    if stack.orchestrator.flavor == "sagemaker":
        needs.append(_zenml("aws", "orchestrator (sagemaker)"))
    if stack.step_operator is not None:
        needs.append(_zenml("aws", f"step_operator ({stack.step_operator.flavor})"))
    if stack.artifact_store.flavor == "s3":
        needs.append(_zenml("s3", "artifact_store (s3)"))
    if stack.container_registry is not None and stack.container_registry.flavor == "aws":
        needs.append(_zenml("aws", "container_registry (aws)"))
    if stack.image_builder is not None and stack.image_builder.flavor == "aws":
        needs.append(_zenml("aws", "image_builder (aws)"))
    for name in stack.integrations:
        if name in INTEGRATION_MODULES:
            needs.append(_zenml(name, f"integrations ({name})"))
    if stack.warehouse.kind == "snowflake":
        needs.append(_extra("snowflake", "warehouse (snowflake)", ("snowflake.snowpark", "snowflake.connector")))
    tiers = stack.serving.tiers if serving_tiers is None else [t for t in serving_tiers if t in stack.serving.tiers]
    for tier in tiers:
        if tier in ("serverless", "autoscaling"):
            needs.append(_extra("aws", f"serving tier {tier}", ("boto3",)))
    return needs


def zenml_integrations_of(stack: StackSpec) -> list[str]:
    """The ZenML integrations the stack's components come from, plus any the stack lists itself."""
    names = set(stack.integrations)
    for need in requirements_of(stack, serving_tiers=()):
        if need.provider.startswith("the ZenML `"):
            names.add(need.provider.split("`")[1])
    return sorted(names)


def missing_integrations(stack: StackSpec, serving_tiers: Iterable[str] | None = None) -> list[Requirement]:
    """The stack's requirements that are not installed here, one per provider (first part that needs it)."""
    seen: set[str] = set()
    missing = []
    for need in requirements_of(stack, serving_tiers):
        if need.provider not in seen and need.missing_modules():
            seen.add(need.provider)
            missing.append(need)
    return missing


def integration_problems(
    stack: StackSpec, serving_tiers: Iterable[str] | None = None, severity: str = "error"
) -> list[Problem]:
    """One Problem per missing integration, naming the stack, the part that needs it and the install command.

    The compiler calls this with the spec's serving tier; `rs run` treats them as errors, `rs compile` may
    pass severity="warning" to compile for a stack whose SDKs live only in the image."""
    problems = []
    for need in missing_integrations(stack, serving_tiers):
        problems.append(
            Problem(
                f"stack `{stack.name}`: {need.describe()}",
                fix=need.install,
                severity=severity,
            )
        )
    return problems


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False
