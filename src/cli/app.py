"""The `rs` Typer app, shared by the command modules. A thin layer: each command calls a library function.

No command shows a traceback: SpecError is rendered with locations and fixes (exit code 2), RscaleError
with its fix, and any other error is translated by `rscale.service_errors` (naming the service, the call
and the fix; an unexpected one says how to see the traceback). `rs --debug ...` shows the traceback.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperGroup

from rscale.terminal import make_console

F = TypeVar("F", bound=Callable[..., Any])

# Every command of `rs` and the module (rscale.cli.<module>) that registers it on `app` when imported, in the
# order `rs --help` lists them. A module is imported only when one of its commands runs, so `rs validate` does
# not pay for the imports of `rs run` or `rs serve`; `rs --help` imports them all.
COMMAND_MODULES = {
    "compile": "compile",
    "run": "compile",
    "seed": "data",
    "init": "init",
    "monitor": "monitor",
    "replay": "monitor",
    "plan": "plan",
    "serve": "serving",
    "stop": "serving",
    "undeploy": "serving",
    "predict": "serving",
    "status": "serving",
    "deploy": "serving",
    "validate": "spec",
    "schema": "spec",
    "tables": "warehouse",
    "columns": "warehouse",
    "stack": "stack",
}


class LazyCommandMap(MutableMapping[str, Any]):
    """The root group's commands by name, filled as they are asked for: looking up one name imports the module
    that registers it (`COMMAND_MODULES`); listing them (--help, the "did you mean" of a mistyped name, tools
    that walk `group.commands`) imports every module first, and lists them in `COMMAND_MODULES` order."""

    def __init__(self, built: dict[str, Any]) -> None:
        self.built = built

    def __getitem__(self, name: str) -> Any:
        if name not in self.built and name in COMMAND_MODULES:
            self._load([COMMAND_MODULES[name]])
        return self.built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.built[name]

    def __iter__(self) -> Iterator[str]:
        self._load(list(dict.fromkeys(COMMAND_MODULES.values())))
        order = list(COMMAND_MODULES)
        return iter(sorted(self.built, key=lambda name: order.index(name) if name in order else len(order)))

    def __len__(self) -> int:
        return len(list(iter(self)))

    def _load(self, modules: list[str]) -> None:
        """Import command modules and add the Click commands Typer builds for what they registered."""
        for module in modules:
            importlib.import_module(f"rscale.cli.{module}")
        group = typer.main.get_group(app)
        for name, command in group.commands.built.items():  # type: ignore[attr-defined]
            self.built.setdefault(name, command)


class LazyCommands(TyperGroup):
    """The root group of `rs` (Typer's `cls`): a Click group whose commands are a `LazyCommandMap`, so a command
    costs only its own module's imports (Click's lazy-loading pattern, on the mapping its lookups go through)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommandMap(dict(self.commands))


app = typer.Typer(
    cls=LazyCommands,
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


# Commands that read a spec or two, print or write a file, and exit: `rscale.cli.main` pauses the garbage
# collector for start-up and these keep it paused to their end (their memory is freed by reference counting or
# with the process); every other command (training, serving, monitoring) gets it back before it starts.
SHORT_COMMANDS = frozenset({"validate", "compile", "schema"})


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    STATE["debug"] = debug or bool(os.environ.get("RS_DEBUG"))
    if ctx.invoked_subcommand not in SHORT_COMMANDS:
        gc.enable()
    from rscale.console import use

    use(out=console, err=err_console)  # the library (steps, sweeps) prints through the CLI's own consoles


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
