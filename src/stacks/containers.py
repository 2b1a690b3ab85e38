"""rscale's container images and their one build-context writer, with one way of pinning requirements.

Two images are built from the same kind of context (Dockerfile, requirements.txt, rscale's source in rscale-src/):
- the step image SageMaker runs rscale's steps in (also as ZenML DockerSettings): rscale's dependencies plus
  the extras and ZenML integrations the stack and spec use;
- the serving image, which speaks the same contract as the local server (`serve`, GET /ping,
  POST /invocations, port 8080), so it runs on SageMaker and on any container platform. Only what the server
  imports goes in, and the custom tier bakes the model package in at /opt/ml/model.

Every requirement is pinned the same way (`pin`): the version installed here (what the tests ran with) when
pyproject.toml's range allows it, else pyproject's range. No Docker engine is needed to write a context;
building the image needs one (or the stack's AWS CodeBuild image builder).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
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
MODEL_DIR = "/opt/ml/model"
PORT = 8080
# What the server process imports at run time (rscale.serving.server + rscale.models), by distribution name.
SERVING_DISTRIBUTIONS = (
    "torch", "pytorch-lightning", "numpy", "pyarrow", "pydantic", "starlette", "uvicorn", "httptools",
)  # fmt: skip
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_GPU_FAMILIES = ("ml.g", "ml.p", "ml.inf", "ml.trn")


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
            pinned.setdefault(req.name.lower(), pin(req))
    return sorted(pinned.values(), key=str.lower)


def _selected(req: Requirement, extras: set[str]) -> bool:
    return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""})


def pin(req: Requirement) -> str:
    """`req` pinned to the installed public version when its declared range allows it, else as declared."""
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


def serving_requirements(gpu: bool = False, extra: Iterable[str] = ()) -> list[str]:
    """requirements.txt lines of the serving image: the distributions the server imports, pinned, then `extra`.

    A CPU image takes torch's CPU wheel of the same version (the default PyPI wheel carries CUDA, gigabytes
    the image does not need).
    """
    declared = {req.name.lower(): req for req in map(Requirement, declared_requirements()) if req.marker is None}
    lines: list[str] = []
    for name in SERVING_DISTRIBUTIONS:
        line = pin(declared.get(name, Requirement(name)))
        if name == "torch" and not gpu and "==" in line:
            lines.append(f"--extra-index-url {TORCH_CPU_INDEX}")
            line += "+cpu"
        lines.append(line)
    lines.extend(extra)
    return lines


@dataclass(frozen=True)
class ImageContext:
    """What one image holds beyond rscale's source: its base, its pinned requirements and how it starts."""

    purpose: str  # the Dockerfile's first comment line
    base_image: str
    requirements: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    apt_packages: list[str] = field(default_factory=list)
    package_dir: Path | None = None  # a model package baked in at MODEL_DIR
    serve: bool = False  # the serving contract: SM_MODEL_DIR, EXPOSE 8080, ENTRYPOINT ["serve"]


def step_image(stack: StackSpec, plan: Plan | None = None) -> ImageContext:
    """The image SageMaker runs the steps of `plan` (or of any plan) on `stack` in."""
    return ImageContext(
        purpose=f"Generated by `rs stack build-context {stack.name}`: the image SageMaker runs rscale's steps in.",
        base_image=stack.image.parent_image or DEFAULT_BASE_IMAGE,
        requirements=image_requirements(stack, plan),
        environment=dict(stack.image.environment),
        apt_packages=list(stack.image.apt_packages),
    )


def serving_image(plan: Plan, package_dir: Path | None) -> ImageContext:
    """The model server's image for `plan`; `package_dir` is baked in, None gives the generic serving image.

    Base image and extra requirements come from `plan.serving.build` when the tier has one.
    """
    build = getattr(plan.serving, "build", None)
    instance_type = getattr(plan.serving, "instance_type", None) or ""
    return ImageContext(
        purpose="Generated by rscale: the model server behind the SageMaker inference-container contract.",
        base_image=build.base_image if build is not None else DEFAULT_BASE_IMAGE,
        requirements=serving_requirements(
            instance_type.startswith(_GPU_FAMILIES), list(build.extra_requirements) if build is not None else []
        ),
        environment={"SM_MODEL_DIR": MODEL_DIR},
        package_dir=package_dir,
        serve=True,
    )


def write_build_context(image: ImageContext, out: Path) -> list[Path]:
    """Write `image`'s build context to `out` (replaced if present), ready for `docker build out`.

    Returns the Dockerfile, requirements.txt, rscale-src/ (and model/ when a package is baked in). The context
    is written beside `out` and swapped in, so a package that lives in an older context is read before that
    context goes away.
    """
    import rscale

    out = Path(out)
    staging = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    if image.package_dir is not None:
        shutil.copytree(image.package_dir, staging / "model", ignore=ignore)
    shutil.copytree(Path(rscale.__file__).resolve().parent, staging / "rscale-src" / "rscale", ignore=ignore)
    (staging / "rscale-src" / "pyproject.toml").write_text(_source_pyproject(rscale.__version__))
    (staging / "requirements.txt").write_text(
        "# Generated by rscale: pinned to the versions its tests ran with (pyproject.toml's range otherwise).\n"
        + "\n".join(image.requirements) + "\n"
    )
    (staging / "Dockerfile").write_text(_dockerfile(image, out))
    (staging / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    names = ["Dockerfile", "requirements.txt", "rscale-src"] + (["model"] if image.package_dir is not None else [])
    return [out / name for name in names]


def _source_pyproject(version: str) -> str:
    # Only rscale's own code goes in (--no-deps): its dependencies are pinned in requirements.txt, and what
    # the image does not need (ZenML and MLflow in a serving image) stays out.
    return f"""[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "rscale"
version = "{version}"
requires-python = ">=3.11"

[project.scripts]
serve = "rscale.serving.server:serve_main"

[tool.setuptools.packages.find]
include = ["rscale", "rscale.*"]
"""


def _dockerfile(image: ImageContext, out: Path) -> str:
    environment = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    environment.update(image.environment)
    apt = (
        "RUN apt-get update && apt-get install -y --no-install-recommends "
        + " ".join(image.apt_packages)
        + " && rm -rf /var/lib/apt/lists/*\n"
        if image.apt_packages
        else ""
    )
    model = f"COPY model/ {MODEL_DIR}/\n" if image.package_dir is not None else ""
    # SageMaker starts the container as `docker run <image> serve`; `serve` accepts that argument.
    serve = f'EXPOSE {PORT}\nENTRYPOINT ["serve"]\n' if image.serve else ""
    return (
        f"# {image.purpose}\n"
        f"# Build: docker build -t <registry>/<repository>:<tag> {out}\n"
        f"FROM {image.base_image}\n"
        + "".join(f"ENV {k}={_quote(v)}\n" for k, v in environment.items())
        + apt
        + "WORKDIR /opt/rscale\n"
        "COPY requirements.txt .\n"
        "RUN pip install --no-cache-dir -r requirements.txt\n"
        "COPY rscale-src/ ./rscale-src/\n"
        "RUN pip install --no-cache-dir --no-deps ./rscale-src\n"
        + model
        + serve
    )


def _quote(value: str) -> str:
    """A Dockerfile ENV value: as it is when plain, else double-quoted with its quotes and backslashes escaped."""
    if re.fullmatch(r"[A-Za-z0-9_./:@+,=-]*", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
