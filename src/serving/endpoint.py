"""What every serving tier shares: the `Endpoint` record and the `Deployer` protocol.

A tier's implementation is registered in `rscale.compiler.spec.serving.SERVING` and built as
`Impl(stack)`; `deployer_for(plan)` does both, so stages and the CLI never name a tier.

Every tier records its endpoints in `.rs/serving/<name>.json` (`write_state`), holding at least `tier`
and `stack`, so `rs status` and `rs undeploy NAME` find an endpoint's deployer without the spec.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan
    from rscale.compiler.stack import StackSpec


class Endpoint(BaseModel):
    """A deployed model as a person (and `rs status`) sees it, whatever the tier."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tier: str
    url: str
    model_version: str | None = None
    plan_hash: str | None = None
    healthy: bool | None = Field(None, description="Answered its health check just now; None when not checked.")
    details: dict[str, Any] = Field(default_factory=dict, description="Tier-specific facts (pid, instance type, ...).")


@runtime_checkable
class Deployer(Protocol):
    """The lifecycle of one tier's endpoints, keyed by endpoint name (the use case's name)."""

    def deploy(self, plan: Plan, package_dir: Path) -> Endpoint:
        """Serve the model package at `package_dir` under `plan.name`; replaces a running one without downtime."""
        ...

    def status(self, name: str) -> Endpoint | None:
        """The endpoint named `name`, or None when there is none."""
        ...

    def predict(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request body (a record or `{"instances": [...]}`) and return the response body."""
        ...

    def undeploy(self, name: str) -> bool:
        """Stop and remove the endpoint; False when there was none."""
        ...


def deployer_for_tier(tier: str, stack: StackSpec) -> Deployer:
    """Build the registered deployer of a serving tier for a stack (imports the tier's module only now)."""
    from rscale.compiler.spec.serving import SERVING

    impl = SERVING.load(tier)
    return impl(stack)  # type: ignore[no-any-return]


def deployer_for(plan: Plan) -> Deployer:
    """The deployer of the plan's serving tier on the plan's stack."""
    return deployer_for_tier(plan.serving.tier, plan.stack)


# --- endpoint records under .rs/serving/ ----------------------------------------------------------------
ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")  # a spec's name, or a package's


def check_name(name: str) -> str:
    """`name` when it can name an endpoint (its record, log and prediction folder live under .rs/ by that
    name, so nothing like `../x` may pass); ConfigurationError otherwise."""
    from rscale.errors import ConfigurationError

    if not ENDPOINT_NAME.match(name):
        raise ConfigurationError(
            f"`{name[:80]}` cannot name an endpoint",
            fix="use the use case's name from its spec: letters, digits, `_` and `-`, at most 63 characters",
        )
    return name


def state_path(name: str) -> Path:
    from rscale.paths import serving_dir

    return serving_dir() / f"{check_name(name)}.json"


def read_state(name: str) -> dict[str, Any] | None:
    """The record of endpoint `name`, or None. A torn or unreadable record counts as none."""
    try:
        state = json.loads(state_path(name).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_state(name: str, state: dict[str, Any]) -> None:
    """Replace the record of endpoint `name` atomically. `state` must hold `tier` and `stack` (a StackSpec dump)."""
    if "tier" not in state or "stack" not in state:
        raise ValueError("an endpoint record needs `tier` and `stack`")
    path = state_path(name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def remove_state(name: str) -> None:
    state_path(name).unlink(missing_ok=True)


def recorded_endpoints() -> list[str]:
    """Names of all recorded endpoints, any tier."""
    from rscale.paths import serving_dir

    return sorted(p.stem for p in serving_dir().glob("*.json") if not p.name.startswith("."))


def deployer_for_name(name: str) -> Deployer | None:
    """The deployer that owns recorded endpoint `name` (its tier, on the stack it was deployed with)."""
    from rscale.compiler.stack import StackSpec

    state = read_state(name)
    if state is None:
        return None
    return deployer_for_tier(str(state["tier"]), StackSpec.model_validate(state["stack"]))


# --- finding model packages -------------------------------------------------------------------------------
def read_manifest(package_dir: Path) -> dict[str, Any]:
    """A package's manifest.json, read without loading the model (no torch import)."""
    from rscale.errors import RscaleError
    from rscale.models.package import MANIFEST

    path = Path(package_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise RscaleError(
            f"{package_dir} is not a model package: {MANIFEST} is missing",
            fix="point at a directory written by the train stage (`rs run`), e.g. one under build/<name>/",
        ) from None
    except ValueError as exc:
        raise RscaleError(f"{path} is not valid JSON: {exc}", fix="re-run training to write the package again") from None
    return manifest  # type: ignore[no-any-return]


def latest_package(name: str) -> Path | None:
    """The package endpoint `name` last served, else the newest (`newest_package`)."""
    from rscale.models.package import MANIFEST

    state = read_state(name)
    if state and state.get("package_dir") and (Path(state["package_dir"]) / MANIFEST).is_file():
        return Path(state["package_dir"])
    return newest_package(name)


def newest_package(name: str) -> Path | None:
    """The newest package (manifest `created`) of use case `name` under build/<name>/, .rs/work/<name>/
    (training output) or .rs/packages/ (packages ZenML loaded), whatever its gate said. None when there
    is none. `rs deploy` and `rs serve` take the production version instead (rscale.serving.versions);
    this is what `--force` serves."""
    from rscale.models.package import MANIFEST
    from rscale.paths import build_dir, state_dir

    found: list[tuple[str, float, Path]] = []
    for root in (build_dir(name), state_dir() / "work" / name, state_dir() / "packages"):
        if not root.is_dir():
            continue
        for manifest_path in root.rglob(MANIFEST):
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(manifest, dict) or manifest.get("name") != name:
                continue
            found.append((str(manifest.get("created") or ""), manifest_path.stat().st_mtime, manifest_path.parent))
    return max(found)[2] if found else None


def record_gate(name: str, gate: dict[str, Any]) -> None:
    """Add what is known of the served package's gate (passed, forced, registry version) to endpoint `name`'s
    record, so `rs status` shows an endpoint that serves a model its gate did not pass."""
    state = read_state(name)
    if state is not None:
        write_state(name, {**state, "gate": gate})
