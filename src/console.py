"""The consoles library code reports through, so that only the CLI decides how things print.

Library modules (the pipeline's steps, sweeps) never import the CLI package: that would make the library depend
on its own front end (a cycle that lazy imports only hide). They ask this module for the active console
instead: `out()` for what a command shows as its result (tables, summaries), `err()` for progress and status
lines. The CLI hands in its own consoles with `use()` before it calls the library. Code that runs without the
CLI (an emitted pipeline.py run by hand, a sweep member's own process) gets `rscale.terminal`'s consoles.
"""

from __future__ import annotations

from rich.console import Console

from rscale.terminal import make_console

_active: dict[str, Console] = {}


def out() -> Console:
    """The console for results: stdout unless the CLI handed in another."""
    if "out" not in _active:
        _active["out"] = make_console()
    return _active["out"]


def err() -> Console:
    """The console for progress and status lines: stderr unless the CLI handed in another."""
    if "err" not in _active:
        _active["err"] = make_console(stderr=True)
    return _active["err"]


def use(*, out: Console | None = None, err: Console | None = None) -> None:
    """Make `out` and/or `err` the consoles library code prints through from now on (the CLI calls this)."""
    if out is not None:
        _active["out"] = out
    if err is not None:
        _active["err"] = err
