"""Every `rs` command has help text and is documented in the README (sqlite-utils' rule)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from rscale.cli.app import app
from rscale.cli.main import main  # noqa: F401  (registers every command module)

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands() -> dict[str, Any]:
    group: Any = typer.main.get_command(app)  # typer vendors click, so duck-type groups by `.commands`
    out: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            out.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            out[name] = command
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    commands = _commands()
    assert {"compile", "run", "validate", "seed", "serve", "stack up"} <= set(commands)
    for name, command in commands.items():
        assert (command.help or "").strip(), f"`rs {name}` has no help text"
        words = name.split()
        documented = re.search(rf"`rs {re.escape(words[0])}\b", README) and all(w in README for w in words)
        assert documented, f"`rs {name}` is not in README.md"


def test_help_runs_for_every_command() -> None:
    runner = CliRunner()
    for name in _commands():
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_seed_default_is_the_generators_default() -> None:
    from rscale.data.seed import DEFAULT_SESSIONS

    option = next(p for p in _commands()["seed"].params if p.name == "sessions")
    assert option.default == DEFAULT_SESSIONS
