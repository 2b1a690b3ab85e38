"""`rs init NAME --table T --target C`: write specs/NAME.yaml for a new use case from what the warehouse holds.

The spec is checked (with the data contract) before it is written, so it validates as written; an existing
file is never overwritten without --force.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rscale.cli.app import app, console, friendly_errors


@app.command("init")
@friendly_errors
def init_command(
    name: str = typer.Argument(..., help="The use case's name: specs/NAME.yaml, its build folder and endpoint."),
    table: str = typer.Option(None, "--table", "-t", help="The table (or view) with one row per example."),
    query: str = typer.Option(None, "--query", "-q", help="A SELECT returning one row per example, instead of --table."),
    target: str = typer.Option(..., "--target", help="The column to predict."),
    stack: str = typer.Option(None, "--stack", "-s", help="Stack whose warehouse holds the data. Default: the active stack."),
    dialect: str = typer.Option("snowflake", "--dialect", help="The SQL dialect of --query (snowflake or duckdb)."),
    out: Path = typer.Option(None, "--out", "-o", help="Where to write the spec. Default: specs/NAME.yaml."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing spec file."),
) -> None:
    """Write a short, commented spec: inferred features, checks from the data, a baseline, a gate and a split."""
    import re

    from rscale.cli.warehouse import open_warehouse, profile_source
    from rscale.compiler.compilation import compile_document
    from rscale.compiler.errors import did_you_mean
    from rscale.compiler.load import load_text
    from rscale.compiler.scaffold import scaffold_spec
    from rscale.errors import ConfigurationError
    from rscale.stacks import active_stack_name

    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", name):
        raise ConfigurationError(
            f"`{name}` cannot name a use case", fix="use lower-case letters, digits, - and _, starting with a letter"
        )
    if (table is None) == (query is None):
        raise ConfigurationError("give the data as --table T or as --query 'SELECT ...' (one of them)",
                                 fix=f"rs init {name} --table my_table --target my_column")
    path = out or Path("specs") / f"{name}.yaml"
    if path.exists() and not force:
        raise ConfigurationError(f"{path} exists already; rs init never overwrites a spec", fix="pass --force to replace it, or pick another NAME")
    stack_name = stack or active_stack_name()
    source = table or query
    with open_warehouse(stack_name) as warehouse:
        _sql, profiles = profile_source(warehouse, source, dialect)
    names = [p.name for p in profiles]
    if target.lower() not in {n.lower() for n in names}:
        hint = did_you_mean(target, names)
        raise ConfigurationError(
            f"`{target}` is not a column of {source}",
            fix=(hint + " " if hint else "") + f"its columns: {', '.join(names)}",
        )
    spec_query = f"SELECT * FROM {table}" if table else query
    scaffold = scaffold_spec(name, spec_query, target, profiles, source=f"`{table}`" if table else "the query",
                             dialect=dialect)
    compiled = compile_document(load_text(scaffold.text, str(path)), stack=stack_name, spec_file=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scaffold.text)
    plan = compiled.plans[0]
    console.print(f"[green]wrote[/] {path}: {len(plan.features.inputs)} inputs "
                  f"({', '.join(f'{n} {k}' for k, n in sorted(scaffold.inputs.items()))}), "
                  f"target `{plan.features.target.name}` ({plan.features.target.type}, {plan.task}), "
                  f"split {plan.split.by}" + ("" if scaffold.time_column else " (no time column)")
                  + f", gate on {plan.evaluate.gate.metric if plan.evaluate.gate else '-'} vs {plan.evaluate.baseline}",
                  soft_wrap=True)
    console.print(f"next: rs compile --explain {path}   then: rs run {path}", soft_wrap=True, markup=False)
