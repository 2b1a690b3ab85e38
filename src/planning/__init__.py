"""`rs plan`: what a run will do and what it will cost, before it runs (Terraform's plan, dbt's state:modified).

Takes a compiled spec (one plan, or a sweep's members) and gives a `PlanReport`:
- steps: each pipeline step runs or is reused from ZenML's cache, and why (`predict`, keyed as in `steps`);
- spec diff: resolved keys that differ from the last run's plan, or the production version's;
- endpoint: create, update in place, tier change or no-op, with the cost-driving settings before and after;
- cost: one training run and a month of serving, from the stack's dated price table (`cost`).

It imports neither torch nor ZenML: the inputs are the plan, a data fingerprint (a cheap warehouse query),
the run records `rs run` writes (`history`) and the endpoint records under `.rs/serving/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from rscale.compiler.stack import PriceTable, StackSpec, load_prices, price_table
from rscale.planning.cost import Estimate, Prices, prices_header, serving_cost, training_cost
from rscale.planning.endpoint_change import EndpointPlan, endpoint_change
from rscale.planning.history import RunRecord, load_runs
from rscale.planning.predict import KeyChange, StepPlan, key_changes, predict_steps, spec_of
from rscale.planning.steps import step_keys

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan
    from rscale.compiler.spec.root import ServingSpec


class MemberPlan(BaseModel):
    """The plan of one run (a sweep has one per member)."""

    plan_hash: str
    swept: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepPlan]
    training: Estimate


class PlanReport(BaseModel):
    name: str
    stack: str
    fingerprint: str | None
    fingerprint_error: str | None = None
    compared_with: str | None = Field(None, description="The run the spec diff compares with, or None.")
    spec_diff: list[KeyChange] = Field(default_factory=list)
    members: list[MemberPlan]
    endpoint: EndpointPlan
    serving: Estimate
    prices: Prices | None = None
    total_training: tuple[float | None, float | None] = (None, None)

    @property
    def is_sweep(self) -> bool:
        return len(self.members) > 1 or any(m.swept for m in self.members)


def fingerprint_of(plan: Plan) -> tuple[str | None, str | None]:
    """The data fingerprint the run would key its data steps on, or None and why it could not be taken."""
    from rscale.errors import RscaleError
    from rscale.warehouses import connect

    try:
        with connect(plan.stack.warehouse, read_only=True) as warehouse:
            return warehouse.fingerprint(plan.data.sql), None
    except (RscaleError, OSError) as exc:
        return None, str(exc).splitlines()[0]
    except Exception as exc:  # noqa: BLE001 - any driver error: the plan still shows what it can
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _baseline(runs: list[RunRecord], against: Literal["last", "production"]) -> RunRecord | None:
    if against == "production":
        return next((r for r in reversed(runs) if r.stage == "production"), None)
    return runs[-1] if runs else None


def plan_runs(
    plans: Sequence[Plan],
    *,
    prices: str | PriceTable | None = None,
    against: Literal["last", "production"] = "last",
    requests_per_month: int | None = None,
    fingerprint: tuple[str | None, str | None] | None = None,
) -> PlanReport:
    """The PlanReport of a compiled spec's plans (one, or a sweep's members). `prices` overrides the stack's."""
    first = plans[0]
    sweep = len(plans) > 1 or bool(first.swept)
    runs = load_runs(first.name)
    fp, fp_error = fingerprint or fingerprint_of(first)
    table = load_prices(prices) if isinstance(prices, str) else prices or _stack_prices(first.stack)
    pending: dict[str, str] = {}
    members = []
    for index, plan in enumerate(plans):
        dump = plan.model_dump(mode="json", by_alias=True)
        keys = step_keys(plan, fp, deploy=not sweep)
        steps = predict_steps(keys, dump, runs, pending=pending)
        if sweep:
            for step in steps:
                if step.action == "run":
                    pending.setdefault(step.key, f"member {index + 1} ({plan.hash}) of this sweep")
        train_reused = any(s.name == "train_model" and s.action == "reuse" for s in steps)
        members.append(MemberPlan(plan_hash=plan.hash, swept=dict(plan.swept), steps=steps,
                                  training=training_cost(plan, table, runs, train_reused)))
    baseline = _baseline(runs, against)
    diff = key_changes(spec_of(baseline.plan), spec_of(first.model_dump(mode="json", by_alias=True))) if baseline else []
    if sweep:
        endpoint = EndpointPlan(change="none (sweep members are not deployed)",
                                reason="deploy the best member with `rs run .../best.yaml`")
    else:
        train_reused = any(s.name == "train_model" and s.action == "reuse" for s in members[0].steps)
        endpoint = endpoint_change(first, train_reused, runs)
        if endpoint.before and endpoint.before.get("tier") and endpoint.change != "create":
            served = next((r for r in reversed(runs) if r.plan_hash == _served_hash(first.name)), None)
            if served is not None:
                before = serving_cost(_serving_of(served), table, requests_per_month)
                endpoint.monthly_before = (before.low, before.high)
    lows = [m.training.low for m in members]
    highs = [m.training.high for m in members]
    return PlanReport(
        name=first.name,
        stack=first.stack.name,
        fingerprint=fp,
        fingerprint_error=fp_error,
        compared_with=(f"{against} run {baseline.run_name} (plan {baseline.plan_hash})" if baseline else None),
        spec_diff=diff,
        members=members,
        endpoint=endpoint,
        serving=serving_cost(first.serving, table, requests_per_month),
        prices=prices_header(table, first.stack.serving.region) if table else None,
        total_training=(_total(lows), _total(highs)),
    )


def _total(costs: list[float | None]) -> float | None:
    """The sum of the members' costs, or None when any one of them is unknown."""
    known = [c for c in costs if c is not None]
    return sum(known) if len(known) == len(costs) else None


def _stack_prices(stack: StackSpec) -> PriceTable | None:
    """The stack's price table; a plan read back from plan.json has lost it (prices stay out of plans), so the
    stack file is read again then."""
    from rscale.compiler.errors import SpecError
    from rscale.compiler.stack import load_stack

    if stack.prices is not None:
        return price_table(stack)
    try:
        return price_table(load_stack(stack.name))
    except SpecError:
        return None


def _served_hash(name: str) -> str | None:
    from rscale.serving.endpoint import read_state

    state = read_state(name)
    return None if state is None else state.get("plan_hash")


def _serving_of(record: RunRecord) -> ServingSpec:
    from rscale.compiler.plan import Plan

    return Plan.model_validate(record.plan).serving


__all__ = ["PlanReport", "MemberPlan", "plan_runs", "fingerprint_of"]
