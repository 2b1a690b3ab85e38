"""What the deploy step will do to the endpoint: create it, update it in place, change its tier, or nothing.

Read from the endpoint record under `.rs/serving/<name>.json` (the tier and plan it serves) and the run
records (the serving settings of that plan); no cloud call is made. A deployer leaves an endpoint alone
when it already serves the same plan and model package, which is the case when the plan hash is the same
and training is reused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from rscale.planning.history import RunRecord
from rscale.serving.local import process_alive

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

Change = Literal["create", "update in place", "tier change", "no-op", "none (sweep members are not deployed)"]


class EndpointPlan(BaseModel):
    change: Change
    reason: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    monthly_before: tuple[float | None, float | None] | None = None
    notes: list[str] = Field(default_factory=list)


def endpoint_change(plan: Plan, train_reused: bool, runs: list[RunRecord]) -> EndpointPlan:
    """The deploy step's effect on the endpoint named after the use case (if the gate passes)."""
    from rscale.planning.cost import cost_settings
    from rscale.serving.endpoint import read_state

    after = cost_settings(plan.serving)
    state = read_state(plan.name)
    if state is None:
        return EndpointPlan(change="create", reason=f"no {plan.name} endpoint is recorded", after=after)
    served = next((r for r in reversed(runs) if r.plan_hash == state.get("plan_hash")), None)
    before: dict[str, Any] = {"tier": state.get("tier")}
    if served is not None:
        from rscale.compiler.plan import Plan

        try:
            before = cost_settings(Plan.model_validate(served.plan).serving)
        except ValueError:
            before = {"tier": state.get("tier")}
    if state.get("tier") != plan.serving.tier:
        return EndpointPlan(
            change="tier change",
            reason=f"{state.get('tier')} -> {plan.serving.tier}",
            before=before,
            after=after,
            notes=[f"a tier's deployer does not replace another tier's endpoint: `rs undeploy {plan.name}` first"],
        )
    if state.get("tier") == "local" and not process_alive(int(state.get("pid") or 0)):
        return EndpointPlan(change="create", reason="the recorded local endpoint is not running", before=before, after=after)
    if state.get("plan_hash") == plan.hash and train_reused:
        return EndpointPlan(change="no-op", reason="it already serves this plan and model package", before=before, after=after)
    why = "a newly trained model package" if not train_reused else f"plan {state.get('plan_hash')} -> {plan.hash}"
    return EndpointPlan(change="update in place", reason=why, before=before, after=after)
