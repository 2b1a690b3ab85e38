"""`rs monitor` and `rs replay`: watch a served model, and send it warehouse rows as traffic.

`rs monitor NAME` exits 0 when every `monitor:` threshold holds, 5 (MONITOR_ALARM_EXIT_CODE) when one is
crossed, so cron or CI can act on it; 1 or 2 on errors, as every command.
"""

from __future__ import annotations

import typer

from rscale.cli.app import app, console, friendly_errors


def _compiled_plan(name: str):  # type: ignore[no-untyped-def]
    from rscale.compiler.plan import Plan
    from rscale.errors import ConfigurationError
    from rscale.paths import build_dir

    path = build_dir(name) / "plan.json"
    if not path.is_file():
        raise ConfigurationError(
            f"no compiled plan for `{name}` at {path}", fix=f"compile it first: rs compile specs/{name}.yaml"
        )
    return Plan.read(path)


@app.command("monitor")
@friendly_errors
def monitor_command(
    name: str = typer.Argument(..., help="The use case whose endpoint to watch."),
    since: str | None = typer.Option(
        None, "--since", help="Window to look at, e.g. 30m, 2h, 7d (default: monitor.window)."
    ),
) -> None:
    """Live metric, input and prediction drift, and traffic of the deployed model; exit 5 when a threshold is crossed.

    Writes build/NAME/monitor.html, monitor.png and monitor.json.
    """
    from rscale.compiler.spec.feedback import duration_seconds
    from rscale.data.feedback import spec_of
    from rscale.errors import ConfigurationError
    from rscale.monitoring.monitor import run_monitor
    from rscale.monitoring.report import write_monitor_report
    from rscale.paths import build_dir, use_project_state

    use_project_state()
    plan = _compiled_plan(name)
    spec = spec_of(plan)
    window = since or spec.monitor.window
    try:
        seconds = duration_seconds(window)
    except ValueError as exc:
        raise ConfigurationError(str(exc), fix="e.g. rs monitor NAME --since 24h") from None
    with console.status(f"monitoring {name} over the last {window}") as status:
        report = run_monitor(plan, spec, since_s=seconds, progress=lambda text: status.update(text))
        paths = write_monitor_report(
            report, build_dir(name), max_psi=spec.monitor.max_psi, max_oov=spec.monitor.max_oov_share
        )
    console.print(
        f"[bold]{name}[/] version {report.endpoint_version} ({report.registered_version or 'not registered'}), "
        f"last {window}: {report.predictions:,} predictions in {report.requests:,} requests"
        + (f", {report.other_versions:,} served by other versions" if report.other_versions else ""),
        soft_wrap=True,
    )
    if report.live_metric:
        live = f"{report.live_value:.4f}" if report.live_value is not None else "n/a"
        test = f"{report.test_value:.4f}" if report.test_value is not None else "n/a"
        console.print(f"  live {report.live_metric} {live} on {report.outcomes:,} landed outcomes; test {test}")
    for row in report.drift:
        oov = (
            f", OOV {row.oov_share:.1%} (training {row.train_oov_share or 0:.1%})" if row.oov_share is not None else ""
        )
        psi = f"{row.psi:.3f}" if row.psi is not None else "n/a"
        console.print(f"  {row.name:<16} {row.type:<12} PSI {psi}{oov}")
    if report.prediction_psi is not None:
        console.print(f"  {'(prediction)':<16} {'':<12} PSI {report.prediction_psi:.3f}")
    if report.latency_ms_p99 is not None or report.error_rate is not None:
        console.print(
            f"  latency p50 {report.latency_ms_p50} ms, p99 {report.latency_ms_p99} ms, errors {report.error_rate}"
        )
    for note in report.notes:
        console.print(f"  [dim]note: {note}[/]", soft_wrap=True)
    for check in report.alarms:
        console.print(f"[bold red]crossed:[/] {check.detail}", soft_wrap=True)
    console.print(f"report: {paths['html']}")
    if report.alarms:
        raise typer.Exit(report.exit_code)
    console.print(f"[green]ok:[/] {len(report.checks)} thresholds hold")


@app.command("replay")
@friendly_errors
def replay_command(
    name: str = typer.Argument(..., help="The endpoint to send requests to."),
    source: str = typer.Option(
        ..., "--from", help="A table, or a query in the spec's SQL dialect, giving one request per row."
    ),
    n: int | None = typer.Option(None, "--n", min=1, help="Send at most N rows."),
    rate: float | None = typer.Option(
        None, "--rate", min=0.001, help="At most R requests per second (default: as fast as allowed)."
    ),
    concurrency: int = typer.Option(8, "--concurrency", min=1, max=256, help="Requests in flight at once."),
    no_log: bool = typer.Option(
        False, "--no-log", help="Ask the endpoint not to log these predictions (X-Rscale-No-Log: 1)."
    ),
) -> None:
    """Send warehouse rows to an endpoint as requests: backfills, shadow and load tests, demo traffic."""
    from rscale.errors import ConfigurationError
    from rscale.monitoring.replay import replay, request_records, rows_sql
    from rscale.serving.endpoint import read_manifest, read_state
    from rscale.warehouses import connect

    plan = _compiled_plan(name)
    state = read_state(name)
    if state is None or not state.get("url"):
        raise ConfigurationError(f"no endpoint named `{name}` is recorded", fix=f"start one: rs serve {name}")
    if state.get("tier") != "local":
        raise ConfigurationError(
            f"`rs replay` sends HTTP to local endpoints; `{name}` runs on the {state.get('tier')} tier",
            fix=f"serve the package locally for a replay: rs serve {name}",
        )
    fields = (
        list(read_manifest(state["package_dir"])["request_schema"]["properties"])
        if state.get("package_dir")
        else [f.name for f in plan.features.inputs] + ([plan.features.id] if plan.features.id else [])
    )
    try:
        sql = rows_sql(source, n, plan.data.dialect, plan.data.warehouse)
    except ValueError as exc:
        raise ConfigurationError(f"--from: {exc}", fix="give a table name or one SELECT statement") from None
    with connect(plan.stack.warehouse, read_only=True) as warehouse:
        rows = warehouse.query_arrow(sql).to_pylist()
    records = request_records(rows, fields)
    if not records:
        raise ConfigurationError(f"--from {source!r} returned no rows", fix="check the table or query")
    with console.status(f"replaying {len(records):,} rows to {state['url']}") as status:
        summary = replay(
            str(state["url"]),
            records,
            rate=rate,
            concurrency=concurrency,
            no_log=no_log,
            progress=lambda done: status.update(f"replaying: {done:,}/{len(records):,}"),
        )
    console.print(
        f"sent {summary.sent:,} requests in {summary.seconds:.1f} s ({summary.rate:,.0f}/s): {summary.ok:,} ok, "
        f"{summary.failed:,} failed; latency p50 {summary.latency_ms_p50 or 0:.1f} ms, p99 {summary.latency_ms_p99 or 0:.1f} ms"
        + (" (not logged)" if no_log else "")
    )
    if summary.first_error:
        console.print(f"[red]first error:[/] {summary.first_error}", soft_wrap=True)
    if summary.failed:
        raise typer.Exit(1)
