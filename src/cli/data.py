"""`rs seed`: fill the stack's DuckDB warehouse with the demo shop, so every spec runs with no data of your own."""

from __future__ import annotations

import time

import typer

from rscale.cli.app import app, console, friendly_errors


@app.command()
@friendly_errors
def seed(
    sessions: int = typer.Option(
        20_000, "--sessions", min=1, help="Browsing sessions to generate (rscale.data.seed.DEFAULT_SESSIONS)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same tables."),
    stack: str = typer.Option("local", "--stack", help="Stack whose DuckDB warehouse receives the tables."),
) -> None:
    """Write the demo tables `items` and `events` into the stack's DuckDB warehouse, replacing old ones."""
    from rich.table import Table

    from rscale.compiler.stack import load_stack
    from rscale.data.seed import seed_demo
    from rscale.errors import RscaleError

    stack_spec = load_stack(stack)
    warehouse = stack_spec.warehouse
    if warehouse.kind != "duckdb":
        raise RscaleError(
            f"`rs seed` writes demo data into DuckDB only; stack `{stack_spec.name}` uses a {warehouse.kind} warehouse",
            fix="seed the local stack (`rs seed --stack local`), or load the demo tables into your warehouse yourself "
            "(write `items` and `events` from rscale.data.seed.demo_tables())",
        )
    started = time.perf_counter()
    with console.status(f"generating {sessions:,} sessions and writing them to DuckDB"):
        summary = seed_demo(warehouse, sessions=sessions, seed=seed)
    elapsed = time.perf_counter() - started
    table = Table(title=f"demo data in {summary['path']}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary["tables"].items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(
        f"{sessions:,} sessions, seed {seed}, in {elapsed:.1f} s. Next: [bold]rs compile specs/recs.yaml && rs run[/]"
    )
