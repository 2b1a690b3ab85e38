"""A stack as the ZenML components it registers: type, name, flavor and configuration, as plain data.

Light on purpose (no ZenML import): `rs stack show`, the registration fingerprint and `pipeline_options`
all need the component names and configurations, and only registration needs ZenML itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscale.compiler.stack import StackSpec
from rscale.paths import project_root

FINGERPRINT_LABEL = "rscale_fingerprint"


@dataclass(frozen=True)
class ComponentSpec:
    type: str  # a zenml.enums.StackComponentType value
    flavor: str
    name: str
    configuration: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        body = json.dumps([self.type, self.flavor, self.configuration], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def component_name(stack_name: str, component_type: str, flavor: str) -> str:
    """Names carry the flavor, so changing a flavor in the YAML registers a new component instead of
    trying to change the flavor of a registered one (ZenML does not allow that)."""
    return f"{stack_name}-{component_type.replace('_', '-')}-{flavor}"


def components_of(stack: StackSpec, root: Path | None = None) -> list[ComponentSpec]:
    """The ZenML components of a stack. Values are used as given: resolve `${env:...}` references first."""
    parts: list[tuple[str, str, dict[str, Any]]] = []
    orchestrator = stack.orchestrator
    if orchestrator.flavor == "sagemaker":
        config = {"execution_role": orchestrator.execution_role, "region": orchestrator.region,
                  "bucket": orchestrator.bucket}
    else:
        config = {}
    parts.append(("orchestrator", orchestrator.flavor, config))
    if stack.step_operator is not None:
        operator = stack.step_operator
        parts.append(("step_operator", operator.flavor, {"role": operator.role, "bucket": operator.bucket}))
    store = stack.artifact_store
    path = store.path if store.flavor == "s3" else str(((root or project_root()) / store.path).resolve())
    parts.append(("artifact_store", store.flavor, {"path": path}))
    if stack.container_registry is not None:
        registry = stack.container_registry
        parts.append(("container_registry", registry.flavor, {"uri": registry.uri}))
    if stack.image_builder is not None:
        builder = stack.image_builder
        parts.append(("image_builder", builder.flavor, {"code_build_project": builder.code_build_project}))
    return [
        ComponentSpec(kind, flavor, component_name(stack.name, kind, flavor),
                      {k: v for k, v in config.items() if v is not None})
        for kind, flavor, config in parts
    ]


def stack_fingerprint(components: list[ComponentSpec]) -> str:
    """Changes whenever a component is added, removed, renamed or reconfigured."""
    body = json.dumps(sorted((c.type, c.name, c.fingerprint()) for c in components))
    return hashlib.sha256(body.encode()).hexdigest()[:16]
