"""The stack `rs` uses when --stack is not given: `rs stack use NAME` writes it to `.rs/active_stack`."""

from __future__ import annotations

from pathlib import Path

from rscale.paths import state_dir

DEFAULT_STACK = "local"


def active_stack_file() -> Path:
    return state_dir() / "active_stack"


def active_stack_name() -> str:
    """The name recorded by `rs stack use`, or "local" (the embedded default) when none is."""
    path = active_stack_file()
    name = path.read_text().strip() if path.exists() else ""
    return name or DEFAULT_STACK


def set_active_stack(name: str) -> str:
    """Check that the stack loads, then record it as the default for --stack. Returns its name."""
    from rscale.compiler.stack import load_stack

    stack = load_stack(name)  # raises SpecError naming the stacks there are
    recorded = name if name.endswith((".yaml", ".yml")) else stack.name
    active_stack_file().write_text(recorded + "\n")
    return recorded
