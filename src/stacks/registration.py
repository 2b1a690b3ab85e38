"""Register a stack's components and the stack itself in ZenML, idempotently, through `zenml.client.Client`.

Every component and the stack carry a fingerprint label of their resolved configuration; a second `up`
with nothing changed compares labels and writes nothing. `.rs/stacks/registered.json` remembers the last
fingerprint per stack and store, so `ensure_registered` skips ZenML entirely when nothing changed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscale.compiler.stack import StackSpec
from rscale.paths import state_dir, use_project_state
from rscale.references import resolve_stack
from rscale.stacks.components import FINGERPRINT_LABEL, ComponentSpec, components_of, stack_fingerprint


@dataclass
class Registration:
    """What `register` did: the ZenML stack's name and one line per component or stack it created or updated."""

    stack: str
    fingerprint: str
    components: list[ComponentSpec]
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def registered_file() -> Path:
    return state_dir() / "stacks" / "registered.json"


def store_url() -> str:
    return os.environ.get("ZENML_STORE_URL", "")


def store_is_local() -> bool:
    """Whether ZenML's store is a local file (SQLite under .rs/), which a job in AWS cannot reach."""
    url = store_url()
    return not url or url.startswith("sqlite")


def zenml_server_problem(stack: StackSpec) -> str | None:
    """Why this stack cannot run with the current ZenML store, if it cannot."""
    if stack.runs_remotely() and store_is_local():
        return (
            f"stack `{stack.name}` runs steps on SageMaker, which report to ZenML's store, but the store is the "
            "local SQLite file under .rs/ (export ZENML_STORE_URL=https://<your ZenML server> and "
            "ZENML_STORE_API_KEY=... to use a ZenML server)"
        )
    return None


def _read_registered() -> dict[str, Any]:
    path = registered_file()
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _remember(name: str, fingerprint: str) -> None:
    records = _read_registered()
    records[name] = {"fingerprint": fingerprint, "store": store_url()}
    path = registered_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")


def _store_exists() -> bool:
    url = store_url()
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).exists()
    return bool(url)


def is_current(stack: StackSpec, root: Path | None = None) -> bool:
    """Whether the last registration of this stack, in this store, matches its YAML and environment now."""
    record = _read_registered().get(stack.name)
    if not record or record.get("store") != store_url() or not _store_exists():
        return False
    return bool(record.get("fingerprint") == stack_fingerprint(components_of(resolve_stack(stack), root)))


@contextlib.contextmanager
def _quiet_zenml() -> Iterator[None]:
    """ZenML warns on every remote component registered against a local store; `up` says that once itself."""
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith("zenml")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def register(stack: StackSpec, root: Path | None = None) -> Registration:
    """Create or update the stack's components and the stack in ZenML; unchanged ones are left alone.

    Raises ConfigurationError naming every missing environment variable before touching ZenML."""
    resolved = resolve_stack(stack)
    components = components_of(resolved, root)
    fingerprint = stack_fingerprint(components)
    use_project_state()
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    result = Registration(stack.name, fingerprint, components)
    with _quiet_zenml():
        for component in components:
            kind = StackComponentType(component.type)
            label = {FINGERPRINT_LABEL: component.fingerprint()}
            try:
                existing = client.get_stack_component(kind, component.name, allow_name_prefix_match=False)
            except KeyError:
                client.create_stack_component(
                    component.name, component.flavor, kind, component.configuration, labels=label
                )
                result.changes.append(f"created {component.type} `{component.name}` ({component.flavor})")
                continue
            if (existing.labels or {}).get(FINGERPRINT_LABEL) == label[FINGERPRINT_LABEL]:
                continue
            # update_stack_component merges into the old configuration; None removes a key the YAML dropped.
            removed: dict[str, Any] = {k: None for k in existing.configuration if k not in component.configuration}
            client.update_stack_component(
                component.name, kind, configuration={**removed, **component.configuration}, labels=label
            )
            result.changes.append(f"updated {component.type} `{component.name}` ({component.flavor})")

        wanted = {StackComponentType(c.type): [c.name] for c in components}
        labels = {FINGERPRINT_LABEL: fingerprint}
        try:
            existing_stack = client.get_stack(stack.name, allow_name_prefix_match=False)
        except KeyError:
            client.create_stack(stack.name, components=wanted, labels=labels)  # type: ignore[arg-type]
            result.changes.append(f"created stack `{stack.name}`")
        else:
            if (existing_stack.labels or {}).get(FINGERPRINT_LABEL) != fingerprint:
                # Types the YAML no longer has are set to no component.
                dropped: dict[StackComponentType, list[str]] = {
                    t: [] for t in existing_stack.components if t not in wanted
                }
                client.update_stack(
                    stack.name,
                    component_updates={**dropped, **wanted},  # type: ignore[dict-item]
                    labels=labels,
                    description=stack.description,
                )
                result.changes.append(f"updated stack `{stack.name}`")
    _remember(stack.name, fingerprint)
    return result


def ensure_registered(stack: StackSpec, *, activate: bool = False) -> str:
    """Make sure ZenML has this stack as its YAML and environment say now; return the ZenML stack's name.

    Fast when nothing changed: the fingerprint in .rs/stacks/registered.json answers without importing
    ZenML. `activate=True` also makes it ZenML's active stack, which is where pipelines run."""
    if not is_current(stack):
        register(stack)
    if activate:
        activate_zenml_stack(stack.name)
    return stack.name


def activate_zenml_stack(name: str) -> None:
    """Make a registered stack ZenML's active stack (pipelines run on the active stack)."""
    use_project_state()
    from zenml.client import Client

    client = Client()
    if client.active_stack_model.name != name:
        client.activate_stack(name)


@dataclass(frozen=True)
class RegisteredComponent:
    type: str
    name: str
    flavor: str
    fingerprint: str | None


def registered_components(name: str) -> list[RegisteredComponent] | None:
    """What ZenML has registered under a stack name, or None when it has no such stack."""
    use_project_state()
    from zenml.client import Client

    try:
        model = Client().get_stack(name, allow_name_prefix_match=False)
    except KeyError:
        return None
    found = []
    for kind, items in model.components.items():
        for item in items:
            found.append(
                RegisteredComponent(kind.value, item.name, item.flavor_name, (item.labels or {}).get(FINGERPRINT_LABEL))
            )
    return found
