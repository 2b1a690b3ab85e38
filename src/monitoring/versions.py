"""Registered model versions in ZenML's model registry: which one is in production, its figures and data.

The register step records each version's metrics, package version and data fingerprint as metadata, and
ZenML links the artifacts a run produced (the splits, the model package) to that version. `rs monitor`
reads the deployed version's test metric and training split from here; the champion/challenger gate reads
the production package. Imports ZenML, so only steps and commands that need the registry call it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RegisteredVersion(BaseModel):
    """One ZenML model version of a use case, as rscale reads it."""

    model_name: str
    version: str
    stage: str | None = None
    package_version: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    gate_passed: bool | None = None

    def __str__(self) -> str:
        return f"{self.model_name}:{self.version}"


def _client() -> Any:
    from rscale.paths import use_project_state

    use_project_state()
    from zenml.client import Client

    return Client()


def _versions(name: str, limit: int = 100) -> list[Any]:
    from zenml.exceptions import EntityExistsError

    client = _client()
    try:
        page = client.list_model_versions(model=name, sort_by="desc:created", size=limit, hydrate=True)
    except (KeyError, EntityExistsError):
        return []
    return list(page.items)


def _record(response: Any) -> RegisteredVersion:
    metadata = dict(response.run_metadata or {})
    stage = getattr(response.stage, "value", response.stage)
    return RegisteredVersion(
        model_name=response.model.name,
        version=str(response.name),
        stage=str(stage) if stage else None,
        package_version=metadata.get("package_version"),
        metrics={k: float(v) for k, v in (metadata.get("metrics") or {}).items()},
        gate_passed=metadata.get("gate_passed"),
    )


def _find(name: str, *, package_version: str | None = None, stage: str | None = None) -> Any | None:
    for response in _versions(name):
        record = _record(response)
        if package_version is not None and record.package_version == package_version:
            return response
        if stage is not None and record.stage == stage:
            return response
    return None


def production_version(name: str) -> tuple[RegisteredVersion, Any] | None:
    """The version in the `production` stage and its ZenML response; None before the first promotion."""
    response = _find(name, stage="production")
    return (_record(response), response) if response is not None else None


def version_of_package(name: str, package_version: str) -> tuple[RegisteredVersion, Any] | None:
    """The registered version whose model package is `package_version` (the endpoint reports it)."""
    response = _find(name, package_version=package_version)
    return (_record(response), response) if response is not None else None


def load_artifact(response: Any, artifact: str) -> Any | None:
    """An artifact linked to a model version (`train`, `test`, `model_package`), loaded; None when absent."""
    found = response.get_artifact(artifact)
    return found.load() if found is not None else None
