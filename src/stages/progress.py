"""Step status lines: each step says what it is doing and what it found, with timing.

ZenML's own logging is turned down to warnings, so these lines are the run's narrative in the terminal. They go
to `rscale.console`'s status console (stderr unless the CLI handed in its own), never to a console of their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rscale.console import err


class _Status:
    def __init__(self) -> None:
        self.message = ""

    def done(self, message: str) -> None:
        self.message = message


@contextmanager
def report(step: str, doing: str) -> Iterator[_Status]:
    status = _Status()
    console = err()
    started = time.perf_counter()
    with console.status(f"[bold]{step}[/]: {doing}...", spinner="dots"):
        try:
            yield status
        except Exception:
            console.print(f"[red]✗[/] [bold]{step:<9}[/] failed after {time.perf_counter() - started:.1f}s")
            raise
    console.print(f"[green]✓[/] [bold]{step:<9}[/] {status.message or doing} [dim]({time.perf_counter() - started:.1f}s)[/]")


def note(step: str, message: str, ok: bool = True) -> None:
    mark = "[green]✓[/]" if ok else "[yellow]![/]"
    err().print(f"{mark} [bold]{step:<9}[/] {message}")
