"""The image SageMaker runs rscale's steps in: ZenML DockerSettings, and a build context for `docker build`.

Requirements are the project's own dependencies pinned to the versions installed here (what the tests
ran against), plus the rscale extras and ZenML integrations the stack and spec use. No Docker engine is
needed to generate either; building the image needs one (or the stack's AWS CodeBuild image builder).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.version import Version

from rscale.compiler.stack import StackSpec
from rscale.stacks.integrations import ZENML_INTEGRATION_REQUIREMENTS, zenml_integrations_of

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

PROJECT = "rscale"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
# rscale lives in the image at /opt/rscale/rscale and is found through PYTHONPATH, so building needs no wheel.
IMAGE_SOURCE_DIR = "/opt/rscale"


def extras_for(stack: StackSpec, plan: Plan | None = None) -> list[str]:
    """The rscale extras a run on this stack needs: the stack's own list plus what its parts imply."""
    extras = list(stack.image.extras)
    if stack.warehouse.kind == "snowflake":
        extras.append("snowflake")
    if stack.runs_remotely() or any(t in ("serverless", "autoscaling") for t in stack.serving.tiers):
        extras.append("aws")
    if plan is not None and plan.tracker.kind == "neptune":
        extras.append("neptune")
    return sorted(set(extras))


def declared_requirements() -> list[str]:
    """rscale's dependency lines with extras markers: from the source checkout's pyproject.toml when there
    is one (it may be newer than the installed metadata), else from the installed package's metadata."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.exists():
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        if project.get("name") == PROJECT:
            lines = list(project.get("dependencies", []))
            for extra, items in project.get("optional-dependencies", {}).items():
                lines += [f'{item}; extra == "{extra}"' for item in items]
            return lines
    return list(importlib.metadata.requires(PROJECT) or [])


def project_requirements(extras: Iterable[str] = ()) -> list[str]:
    """rscale's dependencies plus `extras`, each pinned to the installed version (`name[extra]==x.y.z`).

    A requirement that is not installed here keeps its declared range."""
    lines = [Requirement(line) for line in declared_requirements()]
    wanted = set(extras)
    while True:  # a meta extra (rscale[cloud]) names more extras; repeat until the set stops growing
        more = {
            extra
            for req in lines
            if req.name == PROJECT and _selected(req, wanted)
            for extra in req.extras
            if extra not in wanted
        }
        if not more:
            break
        wanted |= more
    pinned: dict[str, str] = {}
    for req in lines:
        if req.name != PROJECT and _selected(req, wanted):
            pinned.setdefault(req.name.lower(), _pin(req))
    return sorted(pinned.values(), key=str.lower)


def _selected(req: Requirement, extras: set[str]) -> bool:
    return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""})


def _pin(req: Requirement) -> str:
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    try:
        version = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        return f"{req.name}{extras}{req.specifier}"
    # The public version: a local build tag such as torch's "+cpu" would pin the image to this machine's build.
    public = Version(version).public
    if req.specifier and public not in req.specifier:
        return f"{req.name}{extras}{req.specifier}"  # installed one is out of range: keep what pyproject says
    return f"{req.name}{extras}=={public}"


def image_requirements(stack: StackSpec, plan: Plan | None = None) -> list[str]:
    """Every pip requirement of the image: pinned project deps, extras, ZenML integrations, the stack's own."""
    lines = project_requirements(extras_for(stack, plan))
    for name in zenml_integrations_of(stack):
        lines += ZENML_INTEGRATION_REQUIREMENTS.get(name, [])
    lines += stack.image.requirements
    seen: dict[str, str] = {}
    for line in lines:
        seen.setdefault(Requirement(line).name.lower(), line)
    return sorted(seen.values(), key=str.lower)


def docker_settings(plan: Plan) -> dict[str, Any]:
    """ZenML DockerSettings (as plain, JSON-able data) for the image remote steps of this plan run in."""
    stack = plan.stack
    image = stack.image
    settings: dict[str, Any] = {
        # Complete: pinned project deps plus the requirements of the stack's ZenML integrations, so ZenML
        # need not add its own (unpinned) integration and stack requirements on top.
        "requirements": image_requirements(stack, plan),
        "install_stack_requirements": False,
        "disable_automatic_requirements_detection": True,
        "local_project_install_command": "pip install --no-deps .",
        "apt_packages": list(image.apt_packages),
        "environment": {"PYTHONUNBUFFERED": "1", **image.environment},
    }
    if image.parent_image:
        settings["parent_image"] = image.parent_image
    return settings


def write_build_context(stack: StackSpec, out: Path, plan: Plan | None = None) -> list[Path]:
    """Write Dockerfile, requirements.txt and rscale's source into `out`, ready for `docker build out`."""
    import rscale

    out.mkdir(parents=True, exist_ok=True)
    requirements = out / "requirements.txt"
    requirements.write_text(
        f"# Generated by `rs stack build-context {stack.name}`: rscale's dependencies, pinned to the\n"
        "# versions its tests ran with, plus the stack's extras and ZenML integrations.\n"
        + "\n".join(image_requirements(stack, plan))
        + "\n"
    )
    source = out / "rscale"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(Path(rscale.__file__).parent, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env_lines = "".join(f"ENV {k}={_quote(v)}\n" for k, v in sorted(stack.image.environment.items()))
    apt = (
        "RUN apt-get update && apt-get install -y --no-install-recommends "
        + " ".join(stack.image.apt_packages)
        + " && rm -rf /var/lib/apt/lists/*\n"
        if stack.image.apt_packages
        else ""
    )
    dockerfile = out / "Dockerfile"
    dockerfile.write_text(
        f"# Generated by `rs stack build-context {stack.name}`: the image SageMaker runs rscale's steps in.\n"
        f"# Build: docker build -t <ecr-uri>/rscale:<tag> {out}\n"
        f"FROM {stack.image.parent_image or DEFAULT_BASE_IMAGE}\n"
        "ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1\n"
        + env_lines
        + apt
        + "COPY requirements.txt /tmp/requirements.txt\n"
        "RUN pip install -r /tmp/requirements.txt\n"
        f"COPY rscale {IMAGE_SOURCE_DIR}/rscale\n"
        f"ENV PYTHONPATH={IMAGE_SOURCE_DIR}\n"
        "WORKDIR /app\n"
    )
    return [dockerfile, requirements, source]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
