"""`rs validate` and `rs schema`: check a spec (every mistake at once) and write the editor schema.

Neither imports torch or zenml: validating a spec without the data contract takes a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rscale.cli.app import app, console, friendly_errors

DEFAULT_SCHEMA = Path("schema/spec.schema.json")
DEFAULT_DOCS = Path("docs/spec-reference.md")


@app.command()
@friendly_errors
def validate(
    spec: Path = typer.Argument(..., help="The spec file, e.g. specs/recs.yaml."),
    overrides: Optional[list[str]] = typer.Argument(
        None, help="Hydra-style overrides: train.lr=1e-3, +key=value, ~key, sweeps like model.dim=32,64."
    ),
    stack: Optional[str] = typer.Option(
        None, "--stack", "-s", help="The stack (stacks/NAME.yaml) to check against. Default: the active stack."
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Skip the data contract (the warehouse is not asked for the query's columns)."
    ),
) -> None:
    """Check a spec and report every mistake at once, with file:line:col, key path and a fix."""
    from rscale.compiler.compilation import compile_spec
    from rscale.stacks import active_stack_name

    compiled = compile_spec(spec, list(overrides or []), stack=stack or active_stack_name(), offline=offline)
    for warning in compiled.warnings:
        console.print(warning.render(), markup=False)
    name = compiled.plans[0].name
    hashes = ", ".join(plan.hash for plan in compiled.plans)
    contract = "" if compiled.contract_checked else " (data contract skipped: --offline)"
    if len(compiled.plans) == 1:
        console.print(f"ok: {name} (plan {hashes}){contract}", markup=False)
    else:
        console.print(f"ok: {name} ({len(compiled.plans)} sweep members, plans {hashes}){contract}", markup=False)


@app.command()
@friendly_errors
def schema(
    out: Path = typer.Option(DEFAULT_SCHEMA, "--out", "-o", help="Where to write the JSON Schema."),
    docs: Optional[Path] = typer.Option(
        None, "--docs", help=f"Also write the Markdown key reference here (the repo keeps it at {DEFAULT_DOCS})."
    ),
) -> None:
    """Write the spec's JSON Schema (for editor completion) from the spec models; optionally the key reference."""
    from rscale.compiler.spec.reference import json_schema_text, markdown_reference

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json_schema_text())
    console.print(f"wrote {out}", markup=False)
    if docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(markdown_reference())
        console.print(f"wrote {docs}", markup=False)
