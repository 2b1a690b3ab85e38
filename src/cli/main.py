"""Entry point of `rs`: imports each command module, which registers its commands on the shared app."""

from __future__ import annotations

from rscale.cli import compile as _compile  # noqa: F401  compile, run
from rscale.cli import data as _data  # noqa: F401  seed
from rscale.cli import init as _init  # noqa: F401  init
from rscale.cli import monitor as _monitor  # noqa: F401  monitor, replay
from rscale.cli import plan as _plan  # noqa: F401  plan
from rscale.cli import serving as _serving  # noqa: F401  serve, stop, predict, status, deploy, undeploy
from rscale.cli import spec as _spec  # noqa: F401  validate, schema
from rscale.cli import stack as _stack  # noqa: F401  stack list/show/up/use/build-context
from rscale.cli import warehouse as _warehouse  # noqa: F401  tables, columns
from rscale.cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
