"""Library code prints through the consoles the CLI hands in, and never imports the CLI itself."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from rscale import console
from rscale.stages.progress import note, report


@pytest.fixture
def recorded() -> Iterator[tuple[Console, Console]]:
    """Two recording consoles handed in as the CLI would; the previous ones come back afterwards."""
    before = (console.out(), console.err())
    shown, status = Console(record=True, width=200), Console(record=True, width=200)
    console.use(out=shown, err=status)
    yield shown, status
    console.use(out=before[0], err=before[1])


def test_step_status_lines_go_to_the_console_the_cli_handed_in(recorded: tuple[Console, Console]) -> None:
    shown, status = recorded
    with report("train", "fitting") as step:
        step.done("3 epochs")
    note("deploy", "gate blocked", ok=False)
    lines = status.export_text()
    assert "train" in lines and "3 epochs" in lines and "deploy    gate blocked" in lines
    assert shown.export_text() == ""  # status lines never land on the results console


def test_without_the_cli_the_library_gets_the_terminal_consoles() -> None:
    assert console.err().stderr and not console.out().stderr


def test_no_module_outside_the_cli_imports_it(repo: Path) -> None:
    importers = []
    for path in sorted((repo / "src").rglob("*.py")):
        if path.parts[len(repo.parts) + 1] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n == "rscale.cli" or n.startswith("rscale.cli.") for n in names):
                importers.append(f"{path.relative_to(repo)}:{node.lineno}")
    assert importers == [], f"library modules import the CLI: {importers}"
