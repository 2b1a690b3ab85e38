"""Entry point of `rs`: the shared app, whose root group imports each command module when a command needs it
(see `rscale.cli.app.COMMAND_MODULES`), so a command pays only for its own imports.

The cyclic garbage collector is paused while `rs` starts: a start-up allocates tens of thousands of long-lived
objects (typer's and the spec's pydantic models, their validators) and no garbage worth a collection, so every
collection on the way is wasted work. The root group resumes it before any command that runs for long
(`rscale.cli.app.SHORT_COMMANDS` keep it paused to their end). After a short command the process exits, and
what it built is frozen first: the collection at interpreter exit would otherwise walk and tear down all of it
(measured: together a sixth of `rs validate`'s CPU time; see BENCHMARKS.md, Compile).
"""

from __future__ import annotations

import gc

from rscale.cli.app import app


def main() -> None:
    gc.disable()
    try:
        app()
    finally:
        if not gc.isenabled():  # a short command (or --help) ran: the process ends here
            gc.freeze()
            gc.enable()


if __name__ == "__main__":
    main()
