"""`rs stack list | show | up | use | build-context`: the stacks in stacks/*.yaml, as ZenML sees them.

A thin layer over rscale.stacks. `up` registers what ZenML's API can register (flavor configurations
need no cloud SDK) and lists what is still missing to run: environment variables, integrations, a server.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rscale.cli.app import app, console, friendly_errors

stack_app = typer.Typer(help="List, inspect, register and select stacks (stacks/NAME.yaml).", no_args_is_help=True)
app.add_typer(stack_app, name="stack")

NAME = typer.Argument(..., help="A stack: stacks/NAME.yaml, or a path to a stack file.")


def _runner(stack: object) -> str:
    from rscale.compiler.stack import StackSpec

    assert isinstance(stack, StackSpec)
    if stack.step_operator is not None:
        return f"train on SageMaker ({stack.step_operator.flavor} step operator)"
    if stack.orchestrator.flavor == "sagemaker":
        return "every step on SageMaker"
    return f"this machine, {stack.gpus} GPU{'s' if stack.gpus != 1 else ''}" if stack.gpus else "this machine, CPU"


@stack_app.command("list")
@friendly_errors
def list_command() -> None:
    """List the stacks in stacks/, the active one marked with *."""
    from rscale.compiler.errors import SpecError
    from rscale.compiler.stack import available, load_stack
    from rscale.stacks import active_stack_name, missing_variables

    active = active_stack_name()
    names = available()
    if "local" not in names:
        names.insert(0, "local")
    table = Table("", "stack", "runs", "serving tiers", "environment", "description", box=None)
    for name in names:
        try:
            stack = load_stack(name)
        except SpecError as exc:
            table.add_row("*" if name == active else "", name, "[red]invalid[/]", "", "", exc.problems[0].message)
            continue
        missing = missing_variables(stack)
        env = "[yellow]unset: " + ", ".join(missing) + "[/]" if missing else ("set" if stack.env_references() else "-")
        table.add_row(
            "*" if name == active else "", name, _runner(stack), ", ".join(stack.serving.tiers), env,
            stack.description or "",
        )
    console.print(table)


@stack_app.command("show")
@friendly_errors
def show_command(name: str = NAME) -> None:
    """Show a stack's components and flavors, and what is missing to run on it."""
    from rscale.compiler.stack import load_stack
    from rscale.stacks import missing_integrations, missing_variables
    from rscale.stacks.components import components_of
    from rscale.stacks.registration import is_current, registered_components, zenml_server_problem

    stack = load_stack(name)
    console.print(f"[bold]{stack.name}[/]: {stack.description or ''}")
    console.print(f"runs: {_runner(stack)}; warehouse: {stack.warehouse.kind}; serving: {', '.join(stack.serving.tiers)}")
    for component in components_of(stack):  # unresolved: references show as ${env:NAME}, never their values
        config = ", ".join(f"{k}={v}" for k, v in component.configuration.items())
        console.print(f"  {component.type}: {component.flavor} as `{component.name}`" + (f"  {config}" if config else ""),
                      markup=False, soft_wrap=True)
    if stack.step_operator is not None:
        mapping = ", ".join(f"{g} GPU: {t}" for g, t in sorted(stack.step_operator.instance_types.items()))
        console.print(f"training instances by train.gpus: {mapping}")
    missing_env = missing_variables(stack)
    for var in stack.env_references():
        state = "[red]NOT SET[/]" if var in missing_env else "set"
        console.print(f"env {var}: {state}")
    registered = registered_components(stack.name)
    if registered is None:
        console.print(f"ZenML: not registered (run `rs stack up {stack.name}`)")
    elif missing_env:
        console.print("ZenML: registered (set the variables above to compare it with the YAML)")
    elif is_current(stack):
        console.print("ZenML: registered, up to date")
    else:
        console.print(f"ZenML: registered, [yellow]differs from the YAML[/] (run `rs stack up {stack.name}`)")
    _print_missing(stack, missing_integrations(stack), zenml_server_problem(stack))


def _print_missing(stack: object, integrations: list, server: str | None) -> None:
    for need in integrations:
        console.print(f"[yellow]missing:[/] {need.describe()}\n  install: {need.install}", markup=True)
    if server:
        console.print(f"[yellow]missing:[/] a ZenML server: {server}")


@stack_app.command("up")
@friendly_errors
def up_command(
    name: str = NAME,
    use: bool = typer.Option(False, "--use", help="Also make it the active stack (as `rs stack use`)."),
    check: bool = typer.Option(False, "--check", help="Also ask AWS whether the bucket, roles and registry exist."),
) -> None:
    """Register (or update) the stack in ZenML from its YAML. Running it again changes nothing."""
    from rscale.compiler.stack import load_stack
    from rscale.stacks import missing_integrations, register, set_active_stack
    from rscale.stacks.registration import zenml_server_problem

    stack = load_stack(name)
    result = register(stack)
    for line in result.changes:
        console.print(line, markup=False)
    if not result.changed:
        console.print(f"stack `{stack.name}` is up to date ({len(result.components)} components)", markup=False)
    _print_missing(stack, missing_integrations(stack), zenml_server_problem(stack))
    if use:
        console.print(f"active stack: {set_active_stack(name)}", markup=False)
    if check:
        from rscale.errors import RscaleError
        from rscale.stacks.aws_access import check_aws_access

        problems = check_aws_access(stack)
        if problems:
            raise RscaleError("; ".join(problems), fix="create them, or fix the variables that name them")
        console.print("AWS: bucket, roles and registry answered", markup=False)


@stack_app.command("use")
@friendly_errors
def use_command(name: str = NAME) -> None:
    """Make NAME the stack `rs compile` and `rs run` use when --stack is not given (.rs/active_stack)."""
    from rscale.compiler.stack import load_stack
    from rscale.stacks import missing_variables, set_active_stack

    recorded = set_active_stack(name)
    console.print(f"active stack: {recorded}", markup=False)
    missing = missing_variables(load_stack(name))
    if missing:
        console.print(f"[yellow]note:[/] set {', '.join(missing)} before `rs stack up {name}` or `rs run`")


@stack_app.command("build-context")
@friendly_errors
def build_context_command(
    name: str = NAME,
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write Dockerfile, requirements.txt and rscale-src/ into."),
) -> None:
    """Write the Docker build context of the image SageMaker runs the steps in (no Docker engine needed)."""
    from rscale.compiler.stack import load_stack
    from rscale.stacks import step_image, write_build_context

    stack = load_stack(name)
    for path in write_build_context(step_image(stack), out):
        console.print(f"wrote {path}", markup=False)
    registry = stack.container_registry.uri if stack.container_registry else "<registry>"
    console.print(f"build and push: docker build -t {registry}/rscale:latest {out} && docker push {registry}/rscale:latest",
                  markup=False)
