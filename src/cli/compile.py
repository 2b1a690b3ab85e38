"""`rs compile` and `rs run`: from a spec to a plan and a pipeline, and from a pipeline to a live endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rscale.cli.app import app, console, err_console, friendly_errors

if TYPE_CHECKING:
    from rscale.compiler.compilation import Compiled
    from rscale.compiler.plan import Plan
    from rscale.stages.artifacts import RunOutcome

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
    plan = compiled.plans[0]
    written = compiled.doc.tree.get("split")
    if plan.split.by == "random" and not (isinstance(written, dict) and "by" in written):
        err_console.print("note: splitting at random, because the data has no time column (set data.time_column "
                          "to split by time); `rs compile --explain` shows every default", soft_wrap=True)
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
    explain: bool = typer.Option(
        False, "--explain", help="Show the features inferred from the warehouse (and why), and what each default became."
    ),
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
    if explain:
        show_explanation(compiled)
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
    resume_training: bool = typer.Option(
        False,
        "--resume-training",
        help="Continue training from this plan's last checkpoint even if that run finished. Without it a new run "
        "of an unchanged plan trains from scratch, and only a killed (unfinished) run resumes.",
    ),
) -> None:
    """Run a use case end to end: check, load, split, train, evaluate, register and deploy.

    Exit codes: 0 the model was deployed (or the run finished); 1 a run-time error; 2 a mistake in the spec or the configuration; 3 a data check failed; 4 the gate blocked the model (it did not beat the baseline, or the model in production); 6 another run of this use case is in progress.
    """
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
            outcome = _run_build(build, resume_training)
        render_outcome(outcome, build)
        return
    compiled = _compile(spec, overrides, stack, multirun, offline)
    with use_case_lock(compiled.plans[0].name):  # one run of a use case at a time; a second one refuses
        if compiled.is_sweep:
            from rscale.sweeps import run_sweep

            _preview(compiled.plans)
            run_sweep(compiled, resume=resume, max_parallel=max_parallel, overrides=list(overrides or []))
            return
        build = emit(compiled.plans[0])
        remember_last(build)
        outcome = _run_build(build, resume_training)
    render_outcome(outcome, build)


def show_explanation(compiled: Compiled) -> None:
    """`rs compile --explain`: each column inference looked at and what it became, then every default."""
    import json

    from rich.table import Table
    from rich.text import Text

    from rscale.compiler.defaults import explain_defaults

    plan = compiled.plans[0]
    if compiled.inferred:
        table = Table(title="features, inferred from the warehouse and frozen into plan.json", title_justify="left")
        for column in ("column", "warehouse type", "role", "feature type", "why"):
            table.add_column(column)
        for item in compiled.inferred:
            table.add_row(*(Text(str(v)) for v in (item.column, item.warehouse_type, item.role, item.type or "-", item.reason)))
        console.print(table)
    else:
        console.print("features: as written in the spec (nothing inferred)")
    console.print(f"task: {plan.task} (target `{plan.features.target.name}` is {plan.features.target.type})")
    defaults = explain_defaults(plan, compiled.doc.tree)
    if not defaults:
        console.print("defaults: none (every section is written in the spec)")
        return
    table = Table(title="defaults: sections the spec leaves out", title_justify="left")
    for column in ("section", "became", "why"):
        table.add_column(column)
    for section, value, why in defaults:
        table.add_row(Text(section), Text(json.dumps(value)), Text(why))
    console.print(table)


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


def _run_build(build: Path, resume: bool = False) -> RunOutcome:
    """What the emitted pipeline.py's run() does, with `--resume-training` passed through."""
    from rscale.compiler.emit import load_emitted
    from rscale.compiler.plan import Plan
    from rscale.stages.runner import run_compiled

    module = load_emitted(build)
    _preview([Plan.read(build / "plan.json")])
    console.print(f"[bold]running[/] {build / 'pipeline.py'}")
    return run_compiled(module.PLAN_FILE, module.PIPELINE_OPTIONS, resume=resume)


def _preview(plans: list[Plan]) -> None:
    """One line of `rs plan` before the run starts; a preview that fails never stops the run."""
    from rscale.cli.plan import one_line

    try:
        console.print(one_line(plans), markup=False, soft_wrap=True)
    except Exception as exc:  # noqa: BLE001
        err_console.print(f"[yellow]plan preview skipped[/]: {exc}", soft_wrap=True)


def render_outcome(outcome: RunOutcome, build: Path) -> None:
    """The end-of-run summary: metrics against the baseline, the gate, the endpoint and one prediction."""
    import json

    from rich.table import Table

    from rscale.reports import write_run_report

    table = Table(title=f"{outcome.name}  (plan {outcome.plan_hash}, {outcome.seconds:.1f}s)", title_justify="left")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column(f"baseline: {outcome.baseline}", justify="right")
    for metric, value in outcome.metrics.items():
        base = outcome.baseline_metrics.get(metric)
        table.add_row(metric, f"{value:.4f}", "-" if base is None else f"{base:.4f}")
    console.print(table)
    gate = outcome.gate
    console.print(("[green]gate passed[/]: " if gate.passed else "[red]gate failed[/]: ") + gate.reason)
    registration = outcome.registration
    if registration is not None:
        console.print(f"registered: {registration.model_name} version {registration.version}"
                      + (f" ({registration.stage})" if registration.stage else ""))
    if outcome.training.tracker_url:
        console.print(f"tracked: {outcome.training.tracker_url}")
    deployment = outcome.deployment
    if deployment.deployed and deployment.endpoint is not None:
        endpoint = deployment.endpoint
        console.print(f"[bold]endpoint[/]: {endpoint.url} ({endpoint.tier}, version {endpoint.model_version})")
        console.print(f"  request:  {json.dumps(deployment.example_request)}", markup=False)
        console.print(f"  response: {json.dumps(deployment.example_response)}", markup=False)
        console.print(f"  try it:   rs predict {outcome.name} '{json.dumps(deployment.example_request)}'", markup=False)
    else:
        console.print(f"[yellow]not deployed[/]: {deployment.reason}")
    console.print(f"report: {write_run_report(outcome, build)} (curves over epochs, model vs baseline)")
    for error in outcome.tracker_errors:
        err_console.print(f"[yellow]tracker warning[/]: {error}")
    if outcome.exit_code:
        gate_blocked(outcome, build)


def gate_blocked(outcome: RunOutcome, build: Path) -> None:
    """The gate blocked the model: say what to try, and exit with EXIT_GATE_BLOCKED (4) so scripts and CI see it."""
    from rscale.errors import EXIT_GATE_BLOCKED

    spec = outcome.name
    metric = outcome.gate.metric or "the gated metric"
    champion = outcome.champion
    if champion is not None and not champion.passed:
        err_console.print(
            f"[bold red]production keeps serving {champion.champion}[/]: this model (registered, not "
            f"promoted) is worse on {metric}: {champion.reason}",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_GATE_BLOCKED)
    err_console.print(
        f"[bold red]the gate blocked this model[/]: it did not beat baseline `{outcome.baseline}` on {metric}, "
        "so nothing was deployed. Things to try:",
        soft_wrap=True,
    )
    for line in (
        f"train longer or with another learning rate: rs run specs/{spec}.yaml train.max_epochs=50 train.lr=0.003",
        f"sweep a few settings and deploy the best: rs run specs/{spec}.yaml -m train.lr=1e-3,3e-3 train.batch_size=32,128",
        "open the run report (curves per epoch, model vs baseline) to see whether it under- or overfits",
        "if the baseline is what you would ship anyway, it is the better model: the gate did its job",
    ):
        err_console.print(f"  - {line}", soft_wrap=True, markup=False)
    raise typer.Exit(EXIT_GATE_BLOCKED)
