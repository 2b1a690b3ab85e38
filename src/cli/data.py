"""`rs seed`: fill the stack's DuckDB warehouse with the demo shop, so every spec runs with no data of your own."""

from __future__ import annotations

import time
from typing import Any

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
    live: int | None = typer.Option(
        None, "--live", min=1, help="Instead: append N sessions happening now, their next views held back for --land."
    ),
    land: bool = typer.Option(False, "--land", help="Instead: land the held-back events of --live sessions now."),
    shift: bool = typer.Option(
        False, "--shift", help="Shift the traffic (new items, 3x prices, tablets only), so `rs monitor` finds drift."
    ),
) -> None:
    """Write the demo tables `items` and `events` into the stack's DuckDB warehouse, replacing old ones.

    With --live N, append N fresh sessions of the same shop (give the --seed it was seeded with) to `events`
    as live traffic whose next views land later (`rs seed --land`), after `rs replay` sent them to the endpoint.
    """
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
    if live is not None or land:
        _live(warehouse, live, land, shift, seed)
        return
    started = time.perf_counter()
    with console.status(f"generating {sessions:,} sessions and writing them to DuckDB"):
        if shift:
            from rscale.data.seed import demo_tables
            from rscale.data.shift import shift_events
            from rscale.warehouses.duckdb import DuckDBWarehouse

            items, events = demo_tables(sessions=sessions, seed=seed)
            summary: dict[str, Any]
            with DuckDBWarehouse(warehouse) as wh:
                wh.replace("items", items)
                wh.replace("events", shift_events(events, seed=seed))
                summary = {"path": str(wh.path), "tables": {"items": items.num_rows, "events": events.num_rows}}
        else:
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


def _live(config: object, live: int | None, land: bool, shift: bool, seed: int) -> None:
    """`rs seed --live N` and `rs seed --land`: live demo traffic whose outcomes land after the predictions."""
    from rscale.data.shift import LIVE_PREFIX, PENDING_TABLE, fresh_events, land_pending, live_sessions, shift_events
    from rscale.errors import ConfigurationError
    from rscale.warehouses.duckdb import DuckDBWarehouse

    with DuckDBWarehouse(config) as wh:  # type: ignore[arg-type]
        if not wh.table_exists("events"):
            raise ConfigurationError("there is no `events` table to add live traffic to", fix="run `rs seed` first")
        if land:
            if not wh.table_exists(PENDING_TABLE):
                console.print("nothing to land: no held-back events (rs seed --live N first)")
                return
            landed = land_pending(wh.query_arrow(f"SELECT * FROM {PENDING_TABLE}"))
            wh.append("events", landed)
            wh.execute(f"DROP TABLE {PENDING_TABLE}")
            console.print(f"landed {landed.num_rows:,} held-back events in `events`, stamped now")
            return
        events = fresh_events(int(live or 1), seed)
        if shift:
            events = shift_events(events, seed=seed)
        tag = f"{seed}{'s' if shift else ''}-{time.strftime('%H%M%S')}-"
        history, pending = live_sessions(events, tag=tag)
        wh.append("events", history)
        wh.append(PENDING_TABLE, pending)
    console.print(
        f"appended {history.num_rows:,} events of {live:,} live{' shifted' if shift else ''} sessions "
        f"(ids {LIVE_PREFIX}{tag}...); {pending.num_rows:,} next events held back in `{PENDING_TABLE}`"
    )
    console.print("Next: rs replay NAME --from QUERY (see README), then rs seed --land, then rs monitor NAME")
