"""Cost estimates for a plan: one training run, and a month of serving, from the stack's dated price table.

Every estimate carries the assumptions it rests on, so the output can say them: the price table's date
and region, the measured speed (and the hardware it was measured on) or that there is none, the epochs,
rows and requests assumed. Nothing here is a bill; it is arithmetic a person can check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from rscale.compiler.spec.serving import AutoscalingTier, CustomTier, LocalTier, ServerlessTier
from rscale.compiler.stack import PriceTable
from rscale.planning.history import RunRecord, hardware_label

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan
    from rscale.compiler.spec.root import ServingSpec


class Estimate(BaseModel):
    """A cost with its range (low == high when there is one figure) and the assumptions behind it."""

    what: str
    low: float | None = None
    high: float | None = None
    instance: str | None = None
    hours: float | None = None
    assumptions: list[str] = Field(default_factory=list)


class Prices(BaseModel):
    """Which price table was used, for the output's header line."""

    as_of: str
    source: str
    region: str | None = None
    currency: str = "USD"
    note: str | None = None


def prices_header(table: PriceTable, stack_region: str | None) -> Prices:
    import os

    from rscale.compiler.stack import ENV_REFERENCE

    note = None
    if stack_region:  # a ${env:AWS_REGION} reference is read now, as the stack is when it is used
        stack_region = ENV_REFERENCE.sub(lambda m: os.environ.get(m.group(1), m.group(0)), stack_region)
    if stack_region and table.region and "${" not in stack_region and stack_region != table.region:
        note = f"prices are for {table.region}, the stack serves in {stack_region}: use a table for that region"
    return Prices(as_of=table.as_of.isoformat(), source=table.source, region=table.region,
                  currency=table.currency, note=note)


def training_cost(plan: Plan, table: PriceTable | None, runs: list[RunRecord], reused: bool) -> Estimate:
    """Instance price x expected hours. Hours = train rows x epochs / measured samples/s of this use case."""
    hardware = plan.hardware
    label = hardware_label(hardware)
    if reused:
        return Estimate(what="training", low=0.0, high=0.0, instance=hardware.instance_type,
                        assumptions=["train is reused from ZenML's cache: nothing is trained"])
    assumptions: list[str] = []
    measured = [r.training for r in runs if r.training is not None and r.training.samples_per_second > 0]
    same = [t for t in measured if t.hardware == label]
    speed = (same or measured)[-1] if measured else None
    hours = None
    if speed is not None:
        # a spec without max_epochs gets them from the training row count, as training will derive them
        epochs = plan.train.settings(speed.train_rows, None).max_epochs
        seconds = speed.train_rows * epochs / speed.samples_per_second
        hours = seconds / 3600
        assumptions.append(
            f"{speed.train_rows:,} train rows x at most {epochs} epochs at {speed.samples_per_second:,.0f} samples/s "
            f"measured on {speed.hardware}" + ("" if speed in same else f", not on {label}: no measurement there yet")
        )
    else:
        assumptions.append(f"no measurement: this use case has no finished training run to take samples/s from ({label})")
    instance = hardware.instance_type
    if instance is None:
        assumptions.append("trains on this machine: no instance price")
        return Estimate(what="training", low=0.0, high=0.0, hours=hours, assumptions=assumptions)
    price = table.training_per_hour.get(instance) if table else None
    if price is None:
        assumptions.append(f"no training price for {instance} in the price table" if table else "the stack has no price table")
        return Estimate(what="training", instance=instance, hours=hours, assumptions=assumptions)
    assert table is not None
    startup = table.assumptions.training_startup_minutes / 60
    assumptions.append(f"{instance} at {table.currency} {price:g}/hour, plus {table.assumptions.training_startup_minutes:g} "
                       "billed minutes of job start-up")
    if hours is None:
        cap = plan.stack.step_operator.max_run_hours if plan.stack.step_operator else None
        if cap:
            assumptions.append(f"at most {cap:g} h: SageMaker stops the job at step_operator.max_run_hours")
        return Estimate(what="training", instance=instance, low=None, high=price * (cap + startup) if cap else None,
                        hours=None, assumptions=assumptions)
    cost = price * (hours + startup)
    return Estimate(what="training", instance=instance, low=cost, high=cost, hours=hours + startup, assumptions=assumptions)


def serving_cost(serving: ServingSpec, table: PriceTable | None, requests_per_month: int | None = None) -> Estimate:
    """A month of the tier: serverless by memory x request time x requests; instances x hours at min and max.
    A tier registered by a plugin has no cost model here: the estimate says so instead of guessing."""
    if isinstance(serving, LocalTier):
        return Estimate(what="serving", low=0.0, high=0.0, assumptions=["local endpoint on this machine: no instance price"])
    if table is None:
        return Estimate(what="serving", assumptions=["the stack has no price table"])
    a = table.assumptions
    hours = a.hours_per_month
    if isinstance(serving, ServerlessTier):
        requests = a.requests_per_month if requests_per_month is None else requests_per_month
        gb = serving.memory_mb / 1024
        assumptions = [f"{requests:,} requests/month of {a.request_ms:g} ms each, {serving.memory_mb} MB memory "
                       f"(max concurrency {serving.max_concurrency}); nothing when idle"]
        if table.serverless_gb_second is None:
            return Estimate(what="serving", assumptions=[*assumptions, "no serverless price in the table"])
        compute = requests * a.request_ms / 1000 * gb * table.serverless_gb_second
        data = requests * a.request_kb / 1024 / 1024 * (table.data_per_gb or 0.0)
        cost = compute + data
        assumptions.append(f"{table.currency} {table.serverless_gb_second:g} per GB-second"
                           + (f", {table.data_per_gb:g} per GB of data" if table.data_per_gb else ""))
        if serving.provisioned_concurrency:
            if table.serverless_provisioned_gb_second is None:
                assumptions.append(f"provisioned concurrency {serving.provisioned_concurrency}: no price in the table, "
                                   "not included")
            else:
                kept = serving.provisioned_concurrency * gb * hours * 3600 * table.serverless_provisioned_gb_second
                cost += kept
                assumptions.append(f"provisioned concurrency {serving.provisioned_concurrency} kept warm all month")
        return Estimate(what="serving", low=0.0 if not serving.provisioned_concurrency else cost, high=cost,
                        assumptions=assumptions)
    if isinstance(serving, AutoscalingTier):
        low_n, high_n = serving.min_instances, serving.max_instances
    elif isinstance(serving, CustomTier):
        low_n = high_n = serving.instance_count
    else:
        return Estimate(what="serving", assumptions=[f"no cost model for the {serving.tier} tier"])
    instance = serving.instance_type
    price = table.hosting_per_hour.get(instance)
    counts = f"{low_n} to {high_n} x {instance}" if low_n != high_n else f"{low_n} x {instance}"
    if price is None:
        return Estimate(what="serving", instance=instance, assumptions=[counts, f"no hosting price for {instance} in the table"])
    return Estimate(
        what="serving",
        instance=instance,
        low=low_n * price * hours,
        high=high_n * price * hours,
        hours=hours,
        assumptions=[f"{counts} at {table.currency} {price:g}/hour x {hours:g} h/month"],
    )


def cost_settings(serving: ServingSpec) -> dict[str, Any]:
    """The serving settings that drive cost, by tier."""
    names = {
        "serverless": ("memory_mb", "max_concurrency", "provisioned_concurrency"),
        "autoscaling": ("instance_type", "min_instances", "max_instances"),
        "custom": ("instance_type", "instance_count"),
    }.get(serving.tier, ())
    return {"tier": serving.tier, **{n: getattr(serving, n) for n in names}}
