"""What `rs validate` imports, in a fresh process as a person runs it: only what the path it takes needs.

Speed is measured in `python -m bench compile`, never asserted here; these tests guard the import boundaries
that speed rests on, each a module a later change could pull in again by one top-level import:

- the stack runtime (`rscale.stacks.containers` with `packaging` and `importlib.metadata`-based version
  look-ups, `rscale.stacks.registration`): `rs validate` needs only the active stack's name;
- the data contract and feature inference (`rscale.compiler.contract`, `rscale.compiler.inference`, the
  warehouse profile, DuckDB) with `--offline`; with the contract, DuckDB and nothing of the data stack;
- sqlglot once the query's transpilation is cached (the first compile of a query imports it: checked too,
  which shows the probe sees an import when there is one);
- rich's table of emoji codes (the consoles print text as written).

It also guards how `rs` runs its garbage collector (`rscale.cli.main`): paused through start-up and a short
command, back on before any other command runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = """
import json, sys
import rscale.cli.main as main
sys.argv = ["rs", "validate", *sys.argv[1:]]
try:
    main.main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps(sorted(sys.modules)))
"""

NEVER = ("torch", "lightning", "zenml", "mlflow", "hydra", "numpy", "pandas", "pyarrow", "polars", "boto3",
         "rscale.stacks.containers", "rscale.stacks.registration", "rscale.stacks.options", "packaging",
         "rich._emoji_codes")
OFFLINE_ALSO_NEVER = ("duckdb", "rscale.compiler.contract", "rscale.compiler.inference", "rscale.warehouses",
                      "rscale.warehouses.profile")


def validate(project: Path, *args: str) -> tuple[str, set[str]]:
    """Run `rs validate ARGS` in a new process in `project`; its output and the modules it had loaded."""
    run = subprocess.run([sys.executable, "-c", RUN, *args], cwd=project, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    *output, modules = run.stdout.strip().splitlines()
    return "\n".join(output), set(json.loads(modules))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (packages or modules) were imported, by themselves or through a submodule."""
    return [name for name in names if any(m == name or m.startswith(name + ".") for m in modules)]


def test_validate_offline_imports_only_what_validating_needs(project: Path) -> None:
    output, first = validate(project, "specs/recs.yaml", "--offline")
    assert output.startswith("ok: recs (plan ")
    assert "sqlglot" in first  # the first compile of the query transpiles it (and caches the result)
    assert {"rscale.compiler.plan", "rscale.stacks.active", "pydantic", "ruamel.yaml"} <= first  # the path ran

    output_again, again = validate(project, "specs/recs.yaml", "--offline")
    assert output_again == output
    assert loaded(again, ("sqlglot",)) == []  # the cached transpilation is read without sqlglot
    assert loaded(again, NEVER + OFFLINE_ALSO_NEVER) == []


def test_validate_with_the_data_contract_adds_duckdb_and_nothing_heavier(project: Path, warehouse: Path) -> None:
    validate(project, "specs/recs.yaml", "--offline")  # fills the transpile cache, as any earlier compile does
    output, modules = validate(project, "specs/recs.yaml")
    assert output.startswith("ok: recs (plan ") and "skipped" not in output  # the contract was checked
    assert {"duckdb", "rscale.compiler.contract", "rscale.warehouses.duckdb"} <= modules
    assert loaded(modules, NEVER + ("sqlglot", "rscale.warehouses.profile")) == []


def test_the_stacks_package_still_offers_every_name_it_imports_lazily() -> None:
    import rscale.stacks as stacks

    assert sorted(stacks.__all__) == sorted(stacks._WHERE)
    for name in stacks.__all__:
        assert getattr(stacks, name) is getattr(sys.modules[stacks._WHERE[name]], name)
    with pytest.raises(AttributeError):
        stacks.no_such_name  # noqa: B018


GC = """
import gc, sys
import rscale.cli.main as main
from rscale.cli.app import SHORT_COMMANDS, app

seen = {}
for command in ("validate", "compile", "schema", "run", "serve", "monitor", "seed"):
    gc.disable()  # as main() starts
    try:
        app([command, "--help"])  # the root group's callback runs before the command's own --help
    except SystemExit:
        pass
    seen[command] = gc.isenabled()
gc.enable()
sys.argv = ["rs", "validate", "--help"]
try:
    main.main()
except SystemExit:
    pass
print(sorted(SHORT_COMMANDS), seen, gc.isenabled(), gc.get_freeze_count() > 0)
"""


def test_the_collector_stays_paused_only_for_short_commands() -> None:
    run = subprocess.run([sys.executable, "-c", GC], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    *_, last = run.stdout.strip().splitlines()  # the short commands; the collector after each; after main()
    assert last == (
        "['compile', 'schema', 'validate'] "
        "{'validate': False, 'compile': False, 'schema': False, 'run': True, 'serve': True, 'monitor': True, "
        "'seed': True} True True"
    )
