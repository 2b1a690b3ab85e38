"""`rs serve`, `rs stop`, `rs predict`, `rs status`, `rs deploy`, `rs undeploy`: endpoints of any tier.

`serve`/`stop` run the local tier by hand; `deploy`/`undeploy` go through the spec's tier (local or
SageMaker) via the SERVING registry. Each endpoint's record in `.rs/serving/<name>.json` says which tier
owns it, so `status`, `predict` and `undeploy` need only the name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from rscale.cli.app import app, console, friendly_errors


def _deployer_of(name: str) -> Any:
    from rscale.errors import RscaleError
    from rscale.serving.endpoint import deployer_for_name, recorded_endpoints

    deployer = deployer_for_name(name)
    if deployer is None:
        known = recorded_endpoints()
        raise RscaleError(
            f"no endpoint named `{name}`" + (f" (endpoints: {', '.join(known)})" if known else " (none recorded)"),
            fix=f"start one with `rs serve {name}` or `rs deploy specs/{name}.yaml`",
        )
    return deployer


def _deployer_on(name: str, stack_name: str) -> Any:
    """The deployer of endpoint `name` on stack `stack_name`: the recorded tier, else the stack's first
    SageMaker tier (an endpoint deployed from another machine), else local."""
    from rscale.compiler.stack import load_stack
    from rscale.serving.endpoint import deployer_for_tier, read_state

    stack = load_stack(stack_name)
    recorded = (read_state(name) or {}).get("tier")
    tiers = [str(getattr(t, "value", t)) for t in stack.serving.tiers]
    tier = recorded or next((t for t in tiers if t != "local"), "local")
    return deployer_for_tier(str(tier), stack)


def _gate_line(gate: dict[str, Any]) -> str | None:
    """How an endpoint's record describes the gate of what it serves; None when the record says nothing."""
    if not gate:
        return None
    where = f" ({gate['registry_version']})" if gate.get("registry_version") else ""
    if gate.get("forced"):
        said = {False: "did not pass", None: "was not checked", True: "passed"}[gate.get("passed")]
        return f"[bold red]FORCED[/]: its gate {said}{where}" + (f": {gate['reason']}" if gate.get("reason") else "")
    if gate.get("passed") is None:
        return f"not checked{where}: {gate.get('reason') or 'a package from --model-dir'}"
    return f"passed{where}"


def _print_gate(gate: dict[str, Any]) -> None:
    line = _gate_line(gate)
    if line:
        console.print(f"  gate: {line}", soft_wrap=True)


def _print_endpoint(endpoint: Any, verb: str) -> None:
    console.print(
        f"[green]{verb}[/] {endpoint.name} ({endpoint.tier}) at {endpoint.url}, "
        f"version {endpoint.model_version or '?'}, plan {endpoint.plan_hash or '?'}",
        soft_wrap=True,
    )


@app.command("serve")
@friendly_errors
def serve_command(
    name: str | None = typer.Argument(None, help="Use case to serve: what its endpoint serves now, else its production version."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Serve this model package directory instead."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port (0: keep the running endpoint's, or a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    foreground: bool = typer.Option(False, "--foreground", help="Run in this terminal (Ctrl-C stops) instead of detached."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not log predictions to .rs/predictions/<name>/."),
    force: bool = typer.Option(False, "--force", help="Serve the newest package even if it did not pass its gate."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes sharing the port."),
) -> None:
    """Start a local endpoint (the SageMaker container contract: GET /ping, POST /invocations).

    By name it serves the use case's production version (the one whose gate passed), or keeps serving what
    its running endpoint serves; `--force` serves the newest package whatever its gate said.
    """
    from rscale.errors import ConfigurationError
    from rscale.serving.endpoint import check_name, read_manifest, read_state
    from rscale.serving.versions import ChosenPackage, choose_package

    if model_dir is None and name is None:
        raise ConfigurationError("say what to serve", fix="rs serve NAME, or rs serve --model-dir DIR")
    record = read_state(name) if name and model_dir is None and not force else None
    if record and record.get("package_dir") and Path(record["package_dir"], "manifest.json").is_file():
        chosen = ChosenPackage(Path(record["package_dir"]), record.get("gate") or {})  # what it serves already
    elif model_dir is not None:
        chosen = choose_package(name or str(read_manifest(model_dir).get("name") or "model"), model_dir=model_dir, force=force)
    else:
        chosen = choose_package(str(name), force=force)
    package = chosen.package_dir
    manifest = read_manifest(package)
    name = check_name(name or str(manifest.get("name") or "model"))
    if foreground:
        from rscale.paths import predictions_dir
        from rscale.serving.server import serve

        console.print(f"serving {name} version {manifest.get('version')} on http://{host}:{port or 8080} (Ctrl-C stops)")
        serve(package, host=host, port=port or 8080, log_dir=None if no_log else predictions_dir(name), workers=workers)
        return
    from rscale.serving.endpoint import record_gate
    from rscale.serving.local import LocalDeployer

    endpoint = LocalDeployer().serve(name, package, host=host, port=port, log_predictions=not no_log, workers=workers)
    record_gate(name, chosen.gate)
    _print_endpoint(endpoint, "serving")
    _print_gate(chosen.gate)
    console.print(f"  package {endpoint.details.get('package_dir')}\n  log     {endpoint.details.get('log')}")
    console.print(f"  try: rs predict {name} '{{...}}'   stop: rs stop {name}")


@app.command("stop")
@friendly_errors
def stop_command(name: str = typer.Argument(..., help="The endpoint to stop.")) -> None:
    """Stop an endpoint and forget it (same as `rs undeploy` for the local tier)."""
    _undeploy(name)


@app.command("undeploy")
@friendly_errors
def undeploy_command(
    name: str = typer.Argument(..., help="The endpoint to remove."),
    stack: str | None = typer.Option(
        None, "--stack", "-s",
        help="Stack the endpoint runs on (stacks/NAME.yaml); needed when this machine has no record of it.",
    ),
) -> None:
    """Remove an endpoint on whatever tier it runs (a SageMaker endpoint is deleted)."""
    _undeploy(name, stack)


def _undeploy(name: str, stack: str | None = None) -> None:
    from rscale.serving.endpoint import read_state

    tier = (read_state(name) or {}).get("tier", "?")
    deployer = _deployer_of(name) if stack is None else _deployer_on(name, stack)
    if deployer.undeploy(name):
        console.print(f"[green]stopped[/] {name} ({tier})")
    else:
        console.print(f"{name} was not running")


@app.command("predict")
@friendly_errors
def predict_command(
    name: str = typer.Argument(..., help="The endpoint to ask."),
    payload: str | None = typer.Argument(None, help='One record as JSON, e.g. \'{"n_views": 3}\', or {"instances": [...]}.'),
    file: Path | None = typer.Option(None, "--file", "-f", help="Read the request from a .json file (or .jsonl: one record a line)."),
) -> None:
    """Send one request to an endpoint and print the response."""
    from rscale.errors import ConfigurationError

    body = _request_body(payload, file)
    if not isinstance(body, dict):
        raise ConfigurationError("the request must be a JSON object", fix='pass one record {...} or {"instances": [...]}')
    response = _deployer_of(name).predict(name, body)
    console.print_json(json.dumps(response))


def _request_body(payload: str | None, file: Path | None) -> Any:
    from rscale.errors import ConfigurationError

    if (payload is None) == (file is None):
        raise ConfigurationError("give the request as an argument or with --file, not both or neither",
                                 fix='rs predict NAME \'{"field": 1}\'  or  rs predict NAME --file request.json')
    if file is not None:
        if file.exists() and (not file.is_file() or file.stat().st_size > 64 * 1024 * 1024):
            raise ConfigurationError(f"{file} is not a request file (not a regular file, or over 64 MiB)",
                                     fix="pass a .json file with one request, or a .jsonl file with one record a line")
        try:
            text = file.read_text()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {file}: {exc.strerror}", fix="check the path") from None
        where = str(file)
    else:
        text, where = str(payload), "the request argument"
    try:
        if file is not None and file.suffix == ".jsonl":
            return {"instances": [json.loads(line) for line in text.splitlines() if line.strip()]}
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{where} is not valid JSON: {exc}", fix="quote the JSON in single quotes in the shell") from None


@app.command("status")
@friendly_errors
def status_command(name: str | None = typer.Argument(None, help="One endpoint; without it, all.")) -> None:
    """Show endpoints: tier, URL, model version, health and what the tier reports (pid, instances, memory...)."""
    from rscale.serving.endpoint import read_state, recorded_endpoints

    names = [name] if name else recorded_endpoints()
    if not names:
        console.print("no endpoints (start one with `rs serve NAME` or `rs deploy SPEC`)")
        return
    # One block per endpoint rather than a table: URLs, versions and paths stay whole in any terminal width.
    for each in names:
        endpoint = _deployer_of(each).status(each)
        if endpoint is None:
            console.print(f"[bold]{each}[/]  [red]gone[/] (its record is stale; `rs undeploy {each}` clears it)")
            continue
        health = {True: "[green]healthy[/]", False: "[red]unhealthy[/]", None: "health unknown"}[endpoint.healthy]
        console.print(f"[bold]{endpoint.name}[/]  {endpoint.tier}  {health}  {endpoint.url}")
        console.print(f"  version: {endpoint.model_version or '-'}  plan: {endpoint.plan_hash or '-'}")
        _print_gate((read_state(each) or {}).get("gate") or {})
        for key, value in endpoint.details.items():
            if value is not None:
                console.print(f"  {key}: {value}", soft_wrap=True)


@app.command("deploy")
@friendly_errors
def deploy_command(
    spec: Path = typer.Argument(..., help="The spec whose serving tier to deploy, e.g. specs/recs.yaml."),
    overrides: list[str] = typer.Argument(None, help="Overrides, e.g. serving.tier=serverless."),
    stack: str | None = typer.Option(None, "--stack", "-s", help="Stack to deploy with (stacks/NAME.yaml)."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Deploy this package (default: the use case's production version)."),
    force: bool = typer.Option(False, "--force", help="Deploy the newest package even if it did not pass its gate (recorded as forced)."),
) -> None:
    """Deploy the use case's model package on the spec's serving tier, without re-running the pipeline."""
    from rscale.compiler.compilation import compile_spec
    from rscale.errors import ConfigurationError
    from rscale.serving.endpoint import deployer_for, record_gate
    from rscale.serving.versions import choose_package
    from rscale.stacks import active_stack_name

    # Deploying reads no data: skip the warehouse-backed data contract.
    compiled = compile_spec(spec, overrides or [], stack=stack or active_stack_name(), offline=True)
    if len(compiled.plans) != 1:
        raise ConfigurationError("deploy takes one plan, not a sweep", fix="drop the comma-separated overrides")
    plan = compiled.plans[0]
    chosen = choose_package(plan.name, model_dir=model_dir, force=force)
    endpoint = deployer_for(plan).deploy(plan, chosen.package_dir)
    record_gate(plan.name, chosen.gate)
    _print_endpoint(endpoint, "deployed")
    _print_gate(chosen.gate)
    for key, value in endpoint.details.items():
        if value is not None:
            console.print(f"  {key}: {value}")
