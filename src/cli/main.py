"""Entry point of `rs`: the shared app, whose root group imports each command module when a command needs it
(see `rscale.cli.app.COMMAND_MODULES`), so a command pays only for its own imports."""

from __future__ import annotations

from rscale.cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
