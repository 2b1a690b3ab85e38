"""The `rs` Typer app, shared by the command modules. A thin layer: each command calls a library function.

No command shows a traceback: SpecError is rendered with locations and fixes (exit code 2), RscaleError
with its fix, and any other error is translated by `rscale.service_errors` (naming the service, the call
and the fix; an unexpected one says how to see the traceback). `rs --debug ...` shows the traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.markup import escape

from rscale.terminal import make_console

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="rs",
    help="rscale: from one YAML spec to a live endpoint and back.\n\n"
    "Exit codes: 0 done; 1 run-time error; 2 spec or configuration mistake; 3 a data check failed; "
    "4 the gate blocked the model (rs run); 5 a monitor threshold was crossed (rs monitor); "
    "6 another run of the use case is in progress (rs run); 130 interrupted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = make_console()  # full width when not a terminal, so commands and JSON are never wrapped
err_console = make_console(stderr=True)
STATE = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    STATE["debug"] = debug or bool(os.environ.get("RS_DEBUG"))


def friendly_errors(fn: F) -> F:
    """Render rscale's own errors for people; let --debug show the traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rscale.compiler.errors import SpecError
        from rscale.errors import RscaleError

        try:
            return fn(*args, **kwargs)
        except SpecError as exc:
            if STATE["debug"]:
                raise
            count = len([p for p in exc.problems if p.severity == "error"])
            err_console.print(exc.render(), markup=False, soft_wrap=True)
            err_console.print(f"\n[bold red]{count} error{'s' if count != 1 else ''}[/] in the spec.")
            raise typer.Exit(2) from None
        except RscaleError as exc:
            if STATE["debug"]:
                raise
            _report(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own exits and usage errors: already for people
        except Exception as exc:  # noqa: BLE001 - every other error is translated, never a traceback
            if STATE["debug"]:
                raise
            from rscale.service_errors import translate

            translated = translate(exc)
            _report(translated)
            raise typer.Exit(translated.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _report(exc: Exception) -> None:
    from rscale.errors import RscaleError

    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
    fix = exc.fix if isinstance(exc, RscaleError) else None
    if fix:
        err_console.print(f"[bold]fix:[/] {escape(fix)}", soft_wrap=True)
