"""`rs plan`: which steps a run will compute or reuse, the spec diff, the endpoint change and the cost.

Fast on purpose: no torch, no ZenML, no training; one cheap warehouse query for the data fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rscale.cli.app import app, console, friendly_errors
from rscale.cli.compile import MULTIRUN, OVERRIDES, STACK, _compile

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan
    from rscale.planning import PlanReport
    from rscale.planning.predict import StepPlan


def _money(value: float | None, currency: str = "USD") -> str:
    if value is None:
        return "?"
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{value:,.2f}"


def _range(low: float | None, high: float | None, currency: str = "USD") -> str:
    if low is None and high is None:
        return "not priced"
    if low is None:
        return f"up to {_money(high, currency)}"
    if high is None or abs(high - low) < 0.005:
        return _money(low, currency)
    return f"{_money(low, currency)} to {_money(high, currency)}"


def _hours(hours: float) -> str:
    return f"{hours:.2f} h ({hours * 60:.1f} min)" if hours < 1 else f"{hours:.2f} h"


def _value(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


@app.command("plan")
@friendly_errors
def plan_command(
    spec: Path = typer.Argument(..., help="The spec file, e.g. specs/recs.yaml."),
    overrides: list[str] = OVERRIDES,
    stack: str = STACK,
    multirun: bool = MULTIRUN,
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (for CI)."),
    against: str = typer.Option("last", "--against", help="Diff the spec against the `last` run or the `production` one."),
    prices: Path | None = typer.Option(None, "--prices", help="A price table file to use instead of the stack's."),
    requests: int | None = typer.Option(
        None, "--requests-per-month", min=0, help="Serverless requests a month (default: the price table's assumption)."
    ),
) -> None:
    """What `rs run` would do: steps run or reused (and why), spec diff, endpoint change, and cost."""
    from rscale.errors import ConfigurationError
    from rscale.planning import plan_runs

    if against not in ("last", "production"):
        raise ConfigurationError(f"--against must be `last` or `production` (got {against!r})", fix="--against production")
    compiled = _compile(spec, overrides, stack, multirun, offline=True)
    report = plan_runs(compiled.plans, prices=str(prices) if prices else None, against=against,  # type: ignore[arg-type]
                       requests_per_month=requests)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))  # plain text: never wrapped or coloured
        return
    render(report)


def render(report: PlanReport) -> None:
    """The plan for people: four short sections."""
    from rich.table import Table

    currency = report.prices.currency if report.prices else "USD"
    head = f"[bold]plan[/] {report.name} on stack {report.stack}"
    console.print(head + (f", compared with the {report.compared_with}" if report.compared_with else ", no earlier run"))
    if report.fingerprint_error:
        console.print(f"[yellow]data fingerprint not taken[/]: {report.fingerprint_error}", soft_wrap=True)

    for number, member in enumerate(report.members, 1):
        title = "Steps"
        if report.is_sweep:
            swept = " ".join(f"{k}={v}" for k, v in member.swept.items())
            title = f"Member {number}/{len(report.members)} (plan {member.plan_hash}) {swept}"
        table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column("action")
        table.add_column("step")
        table.add_column("why")
        for step in member.steps:
            style = {"run": "yellow", "reuse": "green"}.get(step.action, "red")
            table.add_row(f"[{style}]{step.action}[/]", step.name, "; ".join(step.reasons))
        console.print(table)
        console.print(f"  {_counts(member.steps)}")
        if report.is_sweep:
            console.print(f"  training: {_range(member.training.low, member.training.high, currency)}"
                          + (f", {_hours(member.training.hours)}" if member.training.hours is not None else ""))

    console.print("[bold]Spec diff[/]" + (f" (against the {report.compared_with})" if report.compared_with else ""))
    if not report.compared_with:
        console.print("  no earlier run of this use case to compare with")
    elif not report.spec_diff:
        console.print("  no resolved key differs")
    else:
        width = max(len(c.key) for c in report.spec_diff)
        for change in report.spec_diff:
            mark = {"changed": "~", "added": "+", "removed": "-"}[change.change]
            shown = {"changed": f"{_value(change.before)} -> {_value(change.after)}", "added": _value(change.after),
                     "removed": _value(change.before)}[change.change]
            console.print(f"  {mark} {change.key.ljust(width)}  {shown}", markup=False, soft_wrap=True)
        counts = {k: sum(1 for c in report.spec_diff if c.change == k) for k in ("changed", "added", "removed")}
        console.print("  " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))

    endpoint = report.endpoint
    console.print(f"[bold]Endpoint[/]: {endpoint.change} ({endpoint.reason})" + ("" if report.is_sweep else ", if the gate passes"))
    if endpoint.before is not None:
        console.print(f"  before: {_settings(endpoint.before)}"
                      + (f"  ~{_range(endpoint.monthly_before[0], endpoint.monthly_before[1], currency)}/month" if endpoint.monthly_before else ""))
    if endpoint.after is not None:
        console.print(f"  after:  {_settings(endpoint.after)}  ~{_range(report.serving.low, report.serving.high, currency)}/month")
    for note in endpoint.notes:
        console.print(f"  note: {note}")

    prices = report.prices
    console.print("[bold]Cost[/]" + (f" (price table as of {prices.as_of}, {prices.region or 'no region'}, {prices.currency}; "
                                    "an editable estimate, not a bill)" if prices else " (no price table in this stack)"))
    if prices and prices.note:
        console.print(f"  [yellow]note[/]: {prices.note}")
    training = report.members[0].training
    if report.is_sweep:
        console.print(f"  training, {len(report.members)} members: {_range(report.total_training[0], report.total_training[1], currency)}")
    else:
        line = f"  training: {_range(training.low, training.high, currency)}"
        if training.instance:
            line += f" on {training.instance}"
        line += f", {_hours(training.hours)}" if training.hours is not None else ", hours unknown"
        console.print(line)
    for assumption in training.assumptions:
        console.print(f"    {assumption}", soft_wrap=True)
    console.print(f"  serving: {_range(report.serving.low, report.serving.high, currency)} a month")
    for assumption in report.serving.assumptions:
        console.print(f"    {assumption}", soft_wrap=True)
    if prices:
        console.print(f"    prices: {prices.source}", soft_wrap=True)


def _counts(steps: list[StepPlan]) -> str:
    counts = {a: sum(1 for s in steps if s.action == a) for a in ("reuse", "run", "unknown")}
    return ", ".join(f"{n} {'reused' if a == 'reuse' else 'to run' if a == 'run' else 'unknown'}"
                     for a, n in counts.items() if n)


def _settings(settings: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items() if v is not None)


def one_line(plans: list[Plan]) -> str:
    """`rs run`'s preview of its plan (or sweep): steps reused and run, the endpoint change and the cost."""
    from rscale.planning import plan_runs

    report = plan_runs(plans)
    currency = report.prices.currency if report.prices else "USD"
    if report.is_sweep:
        steps = [s for m in report.members for s in m.steps]
        return (f"plan: sweep of {len(report.members)} members, {_counts(steps)} steps in all | "
                f"training {_range(report.total_training[0], report.total_training[1], currency)}")
    member = report.members[0]
    ran = [s for s in member.steps if s.action != "reuse"]
    first = next((s for s in ran if s.reasons and "enable_cache" not in s.reasons[0]), None)
    why = f" ({first.name}: {first.reasons[0]})" if first else ""
    return (f"plan: {_counts(member.steps)}{why} | endpoint: {report.endpoint.change} | "
            f"training {_range(member.training.low, member.training.high, currency)}, "
            f"serving {_range(report.serving.low, report.serving.high, currency)}/month")
