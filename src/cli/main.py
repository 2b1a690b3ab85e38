"""Entry point of `rs`: imports each command module, which registers its commands on the shared app."""

from __future__ import annotations

from rscale.cli import compile as _compile  # noqa: F401  (compile, validate, run)
from rscale.cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
