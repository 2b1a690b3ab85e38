"""`rs init`, `rs tables`, `rs columns`, the gate's exit code and output width off a terminal (issue 14:
stumbles 1, 4 and 8, and the promise that `rs init` writes a spec that validates as written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from rscale.cli.app import app
from rscale.cli.main import main  # noqa: F401  (registers every command module)
from rscale.compiler.compilation import compile_spec

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.fixture
def warehouse(project: Path) -> Path:
    """A new table as a new user would bring it: an id, 30 numeric measurements, a label, a time column."""
    path = project / ".rs" / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    measures = ", ".join(f"cos(i * {k + 1}) * {k + 3} AS m{k:02d}" for k in range(30))
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE measurements AS SELECT {measures}, CAST(i % 3 = 0 AS INTEGER) AS target "
                    "FROM range(455) AS t(i)")
        con.execute("CREATE TABLE orders AS SELECT 'o' || i AS order_id, ['web', 'shop'][i % 2 + 1] AS channel, "
                    "i * 2.5 AS amount, TIMESTAMP '2026-03-01' + INTERVAL (i) MINUTE AS placed_at, "
                    "i % 4 = 0 AS returned FROM range(300) AS t(i)")
    return path


def _rs(*args: str) -> typer.testing.Result:  # type: ignore[name-defined]
    return CliRunner().invoke(app, list(args))


def test_init_writes_a_short_commented_spec_that_validates_as_written(warehouse: Path) -> None:
    result = _rs("init", "cancer", "--table", "measurements", "--target", "target")
    assert result.exit_code == 0, result.output
    text = Path("specs/cancer.yaml").read_text()
    assert "inputs: all" in text and "# " in text
    assert "{type: row_count, min: 227}" in text
    assert "{type: not_null, columns: [target]}" in text
    assert "{type: accepted_values, column: target, values: [0, 1]}" in text
    assert "split: {by: random}" in text and "baseline: [gbdt, logistic, majority]" in text and "gate: {metric: auc" in text
    assert len(text.splitlines()) <= 25
    plan = compile_spec("specs/cancer.yaml").plans[0]  # as written, with the data contract
    assert len(plan.features.inputs) == 30 and plan.features.target.type == "binary"
    assert plan.split.by == "random" and [c.type for c in plan.checks] == ["row_count", "not_null", "accepted_values"]
    assert "30 inputs (30 numeric)" in result.output and "no time column" in result.output


def test_init_finds_the_time_column_id_and_low_cardinality_values(warehouse: Path) -> None:
    result = _rs("init", "returns", "--query", "SELECT * FROM orders WHERE amount >= 0", "--target", "returned")
    assert result.exit_code == 0, result.output
    text = Path("specs/returns.yaml").read_text()
    assert "time_column: placed_at" in text and "split: {by: time}" in text
    assert "id: order_id" in text
    assert "{type: accepted_values, column: channel, values: [shop, web]}" in text
    plan = compile_spec("specs/returns.yaml").plans[0]
    assert [(f.name, f.type) for f in plan.features.inputs] == [("channel", "categorical"), ("amount", "numeric")]
    assert plan.features.target.type == "binary" and plan.split.by == "time"


def test_init_never_overwrites_without_force(warehouse: Path) -> None:
    assert _rs("init", "cancer", "--table", "measurements", "--target", "target").exit_code == 0
    Path("specs/cancer.yaml").write_text("# mine\n")
    again = _rs("init", "cancer", "--table", "measurements", "--target", "target")
    assert again.exit_code == 2 and "exists already" in again.output and "--force" in again.output
    assert Path("specs/cancer.yaml").read_text() == "# mine\n"
    assert _rs("init", "cancer", "--table", "measurements", "--target", "target", "--force").exit_code == 0
    assert "inputs: all" in Path("specs/cancer.yaml").read_text()


def test_init_with_an_unknown_target_lists_the_columns(warehouse: Path) -> None:
    result = _rs("init", "cancer", "--table", "measurements", "--target", "targte")
    assert result.exit_code == 2
    assert "did you mean `target`?" in result.output and "m00" in result.output
    assert not Path("specs/cancer.yaml").exists()


def test_tables_and_columns_show_what_the_warehouse_holds(warehouse: Path) -> None:
    listed = _rs("tables", "--json")
    assert listed.exit_code == 0, listed.output
    assert {"name": "measurements", "kind": "table", "rows": 455, "columns": 31} in json.loads(listed.output)
    table = _rs("tables")
    assert "measurements" in table.output and "455" in table.output
    columns = json.loads(_rs("columns", "orders", "--json").output)
    by_name = {c["name"]: c for c in columns}
    assert by_name["channel"]["values"] == ["shop", "web"] and by_name["channel"]["feature_type"] == "categorical"
    assert by_name["amount"]["type"].startswith("DECIMAL") and by_name["amount"]["feature_type"] == "numeric"
    assert by_name["returned"]["feature_type"] == "binary" and by_name["placed_at"]["feature_type"] is None
    assert by_name["order_id"]["distinct"] == 300 and by_name["order_id"]["null_share"] == 0.0
    shown = _rs("columns", "SELECT amount FROM orders")
    assert shown.exit_code == 0 and "amount" in shown.output and "numeric" in shown.output
    missing = _rs("columns", "no_such_table")
    assert missing.exit_code == 1 and "rs tables" in missing.output


def test_output_is_not_wrapped_when_not_a_terminal(project: Path) -> None:
    code = (
        "from rscale.cli.app import console\n"
        "console.print('try it:   rs predict cancer ' + '{\"m00\": 1.2345678901234567, ' * 20 + '}')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert len(out.splitlines()) == 1 and len(out) > 500


def test_a_blocked_gate_exits_with_its_own_code_and_says_what_to_try(project: Path) -> None:
    from rscale.cli.compile import gate_blocked
    from rscale.errors import EXIT_GATE_BLOCKED
    from rscale.stages.runner import RunOutcome

    outcome = RunOutcome(name="cancer", plan_hash="h", run_id="r", run_name="n", seconds=1.0, fingerprint="f",
                         baseline="logistic", training={"package_dir": "package"},
                         gate={"passed": False, "metric": "auc", "reason": "auc 0.7 < 0.99", "model_value": None, "baseline_value": None, "required_value": None})
    with pytest.raises(typer.Exit) as caught:
        gate_blocked(outcome, project)
    assert caught.value.exit_code == EXIT_GATE_BLOCKED == 4
    assert "| 4 | `rs run`: the gate blocked the model" in README
    help_text = _rs("--help").output
    assert "4 the gate blocked the model" in " ".join(help_text.split())
