"""`rs compile` and `rs run`: from a spec to a plan and a pipeline, and from a pipeline to a live endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rscale.cli.app import app, console, err_console, friendly_errors

OVERRIDES = typer.Argument(None, help="Overrides in Hydra's grammar: key=value, +key=value, ~key, key=a,b (sweep).")
STACK = typer.Option(None, "--stack", "-s", help="Stack to run on (stacks/NAME.yaml). Default: the active stack.")
MULTIRUN = typer.Option(False, "--multirun", "-m", help="Expand sweeps (key=a,b, range(), choice()) into members.")


def _stack(name: str | None) -> str:
    from rscale.stacks import active_stack_name

    return name or active_stack_name()


def _compile(spec: Path, overrides: list[str] | None, stack: str | None, multirun: bool, offline: bool):
    from rscale.compiler.compilation import compile_spec
    from rscale.compiler.errors import Location, Problem, SpecError

    compiled = compile_spec(spec, overrides or [], stack=_stack(stack), offline=offline)
    if compiled.is_sweep and not multirun:
        raise SpecError(
            [
                Problem(
                    f"these overrides describe a sweep of {len(compiled.plans)} members",
                    location=Location(str(spec)),
                    override=" ".join(o for o in overrides or [] if "," in o or "(" in o) or None,
                    fix="add -m (--multirun) to run every member",
                )
            ]
        )
    from rscale.stacks.integrations import integration_problems

    tiers = sorted({p.serving.tier for p in compiled.plans})
    for warning in [*compiled.warnings, *integration_problems(compiled.stack, tiers, severity="warning")]:
        err_console.print(warning.render(), markup=False)
    return compiled


@app.command("compile")
@friendly_errors
def compile_command(
    spec: Path = typer.Argument(..., help="The spec file, e.g. specs/recs.yaml."),
    overrides: list[str] = OVERRIDES,
    stack: str = STACK,
    multirun: bool = MULTIRUN,
    offline: bool = typer.Option(False, "--offline", help="Skip the data contract (no warehouse access)."),
    show_sql: bool = typer.Option(False, "--show-sql", help="Print the SQL that will run on the warehouse."),
) -> None:
    """Validate a spec, plan it against the stack, and emit build/<name>/plan.json and pipeline.py."""
    from rscale.compiler.emit import emit, remember_last

    compiled = _compile(spec, overrides, stack, multirun, offline)
    if compiled.is_sweep:
        from rscale.sweeps import emit_sweep

        _show_members(emit_sweep(compiled, overrides=list(overrides or [])))
        return
    plan = compiled.plans[0]
    out = emit(plan)
    remember_last(out)
    if show_sql:
        from rscale.compiler.sql import show

        console.print(show(plan), markup=False, soft_wrap=True)
    console.print(
        f"[green]compiled[/] {plan.name} (plan {plan.hash}, stack {plan.stack.name}, "
        f"{plan.model.type} -> {plan.serving.tier}) -> {out}/pipeline.py"
    )


@app.command("run")
@friendly_errors
def run_command(
    spec: Path | None = typer.Argument(None, help="The spec file. Without it, runs what `rs compile` emitted last."),
    overrides: list[str] = OVERRIDES,
    stack: str = STACK,
    multirun: bool = MULTIRUN,
    resume: str | None = typer.Option(
        None, "--resume", help="Resume sweep ID: run only its unfinished members (the same command also resumes)."
    ),
    max_parallel: int = typer.Option(
        1, "--max-parallel", min=1, help="Sweep members to run side by side, each in its own process (default 1)."
    ),
    offline: bool = typer.Option(False, "--offline", help="Skip the compile-time data contract."),
) -> None:
    """Run a use case end to end: check, load, split, train, evaluate, register and deploy."""
    from rscale.compiler.emit import emit, last_compiled, remember_last
    from rscale.run_lock import use_case_lock

    if resume:  # a sweep's own record has its spec, stack and overrides: `rs run --resume ID` is enough
        from rscale.sweeps import find_sweep

        record = find_sweep(resume)
        spec = spec or Path(record["spec_file"])
        stack = stack or record["stack"]
        overrides = overrides or record["overrides"]
        multirun = True
    if spec is None:
        if overrides:
            from rscale.errors import ConfigurationError

            raise ConfigurationError("overrides need a spec", fix="rs run specs/NAME.yaml key=value")
        build = last_compiled()
        if build is None:
            from rscale.errors import ConfigurationError

            raise ConfigurationError("nothing compiled yet", fix="rs compile specs/recs.yaml, or rs run specs/recs.yaml")
        with use_case_lock(build.name):
            outcome = _run_build(build)
        render_outcome(outcome, build)
        return
    compiled = _compile(spec, overrides, stack, multirun, offline)
    with use_case_lock(compiled.plans[0].name):  # one run of a use case at a time; a second one refuses
        if compiled.is_sweep:
            from rscale.sweeps import run_sweep

            run_sweep(compiled, resume=resume, max_parallel=max_parallel, overrides=list(overrides or []))
            return
        build = emit(compiled.plans[0])
        remember_last(build)
        outcome = _run_build(build)
    render_outcome(outcome, build)


def _show_members(sweep: Any) -> None:
    """`rs compile -m`: the members a sweep would run, by their swept values, without running them."""
    from rich.table import Table

    table = Table(title=f"sweep {sweep.sweep_id}: {len(sweep.members)} members of {sweep.name}", title_justify="left")
    table.add_column("plan")
    for key in sweep.swept_keys:
        table.add_column(key, justify="right")
    for member in sweep.members:
        table.add_row(member.plan.hash, *[str(member.plan.swept.get(k, "")) for k in sweep.swept_keys])
    console.print(table)
    fixed = [o for o in sweep.members[0].plan.overrides if o.split("=", 1)[0].lstrip("+~") not in sweep.swept_keys]
    if fixed:
        console.print(f"every member: {' '.join(fixed)}", soft_wrap=True)
    console.print(f"emitted: {sweep.folder}/members/<plan>/; run them with `rs run` and the same arguments", soft_wrap=True)


def _run_build(build: Path) -> Any:
    from rscale.compiler.emit import load_emitted

    module = load_emitted(build)
    console.print(f"[bold]running[/] {build / 'pipeline.py'}")
    return module.run()


def render_outcome(outcome: Any, build: Path) -> None:
    """The end-of-run summary: metrics against the baseline, the gate, the endpoint and one prediction."""
    import json

    from rich.table import Table

    from rscale.run_report import write_run_report

    table = Table(title=f"{outcome.name}  (plan {outcome.plan_hash}, {outcome.seconds:.1f}s)", title_justify="left")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column(f"baseline: {outcome.baseline}", justify="right")
    for metric, value in outcome.metrics.items():
        base = outcome.baseline_metrics.get(metric)
        table.add_row(metric, f"{value:.4f}", "-" if base is None else f"{base:.4f}")
    console.print(table)
    gate = outcome.gate
    console.print(("[green]gate passed[/]: " if gate.get("passed") else "[red]gate failed[/]: ") + gate.get("reason", ""))
    registration = outcome.registration
    console.print(f"registered: {registration.get('model_name')} version {registration.get('version')}"
                  + (f" ({registration['stage']})" if registration.get("stage") else ""))
    training = outcome.training
    if training.get("tracker_url"):
        console.print(f"tracked: {training['tracker_url']}")
    deployment = outcome.deployment
    if deployment.get("deployed"):
        endpoint = deployment["endpoint"]
        console.print(f"[bold]endpoint[/]: {endpoint['url']} ({endpoint['tier']}, version {endpoint['model_version']})")
        console.print(f"  request:  {json.dumps(deployment['example_request'])}", markup=False)
        console.print(f"  response: {json.dumps(deployment['example_response'])}", markup=False)
        console.print(f"  try it:   rs predict {outcome.name} '{json.dumps(deployment['example_request'])}'", markup=False)
    else:
        console.print(f"[yellow]not deployed[/]: {deployment.get('reason')}")
    console.print(f"report: {write_run_report(outcome, build)} (curves over epochs, model vs baseline)")
    for error in outcome.tracker_errors:
        err_console.print(f"[yellow]tracker warning[/]: {error}")
