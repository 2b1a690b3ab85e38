"""Which model package an endpoint may serve: the gate holds for `rs deploy` and `rs serve` as for `rs run`.

The register step promotes a version to `production` in ZenML's model registry only when its gate passed.
`rs deploy` and `rs serve` take that version's package (the `model_package` artifact of the model version,
copied under .rs/packages/). A package that did not pass its gate, or the newest package when there is no
production version, is served only with `--force`, and the endpoint record says so (`gate.forced`), which
`rs status` shows. A package given with `--model-dir` is looked up in the registry by its version: one the
registry knows as gate-failed needs `--force`; one it does not know is served and recorded as unchecked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscale.errors import ConfigurationError

PACKAGE_ARTIFACT = "model_package"  # the train step's output name


@dataclass(frozen=True)
class ChosenPackage:
    """The package to serve and what is known of its gate, as the endpoint record keeps it."""

    package_dir: Path
    gate: dict[str, Any] = field(default_factory=dict)


def _value(metadata: dict[str, Any], key: str) -> Any:
    value = metadata.get(key)
    return getattr(value, "value", value)


def _registry_versions(name: str) -> list[Any]:
    """Every version of model `name` in ZenML's registry, newest first; none when there is no such model."""
    from rscale.paths import use_project_state

    use_project_state()
    from zenml.client import Client

    try:
        page = Client().list_model_versions(model=name, sort_by="desc:number", size=1000, hydrate=True)
    except KeyError:
        return []
    return list(page.items)


def _gate_of(version: Any) -> dict[str, Any]:
    metadata = dict(version.run_metadata or {})
    stage = getattr(version.stage, "value", version.stage)
    return {
        "passed": bool(_value(metadata, "gate_passed")) if "gate_passed" in metadata else None,
        "reason": _value(metadata, "gate_reason"),
        "registry_version": f"{version.model.name}:{version.number}",
        "stage": stage,
        "package_version": _value(metadata, "package_version"),
    }


def production_package(name: str) -> ChosenPackage | None:
    """The package of the production version of use case `name`, or None when no version passed its gate."""
    for version in _registry_versions(name):
        if getattr(version.stage, "value", version.stage) != "production":
            continue
        artifact = version.get_artifact(PACKAGE_ARTIFACT)
        if artifact is None:
            return None
        package = artifact.load()  # PackageDir: a local copy of the stored package
        return ChosenPackage(Path(package.path), {**_gate_of(version), "forced": False})
    return None


def package_gate(name: str, package_dir: Path) -> dict[str, Any]:
    """What the registry knows of the gate of the package at `package_dir` (matched by its manifest version)."""
    try:
        manifest = json.loads((Path(package_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    version = manifest.get("version")
    for registered in _registry_versions(name) if version else []:
        gate = _gate_of(registered)
        if gate["package_version"] == version:
            return gate
    return {"passed": None, "reason": "not in the model registry: its gate was not checked"}


def choose_package(name: str, *, model_dir: Path | None = None, force: bool = False) -> ChosenPackage:
    """The package `rs deploy` / `rs serve` may serve for use case `name` (see the module docstring)."""
    from rscale.serving.endpoint import newest_package, read_manifest

    if model_dir is not None:
        read_manifest(model_dir)  # a clear error when it is not a package
        gate = package_gate(name, model_dir)
        if gate["passed"] is False and not force:
            raise ConfigurationError(
                f"the package at {model_dir} did not pass its gate ({gate.get('reason')})",
                fix="serve the production version (leave out --model-dir), or add --force to serve this one anyway",
            )
        return ChosenPackage(Path(model_dir), {**gate, "forced": force and gate["passed"] is not True, "source": "--model-dir"})
    if not force:
        chosen = production_package(name)
        if chosen is None:
            raise ConfigurationError(
                f"use case `{name}` has no production version: no trained model of it has passed its gate",
                fix=f"run `rs run specs/{name}.yaml` until a model passes the gate (the run's report says by how much "
                "it missed), or add --force to serve the newest package anyway",
            )
        return chosen
    package = newest_package(name)
    if package is None:
        raise ConfigurationError(
            f"no model package found for `{name}`", fix=f"train one with `rs run specs/{name}.yaml`, or pass --model-dir DIR"
        )
    gate = package_gate(name, package)
    return ChosenPackage(package, {**gate, "forced": gate["passed"] is not True})
