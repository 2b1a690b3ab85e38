"""Features inferred from the warehouse at compile time (issue 14), against a real DuckDB file.

Stumbles covered here: 2 (`inputs: all`, bare names, DOUBLE as numeric), 3 (no time column: a random
split, said; a time split without one points at `split.by`), and the 12-line spec for a new table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from rscale.compiler.compilation import compile_document, compile_spec
from rscale.compiler.errors import SpecError
from rscale.compiler.load import load_text
from rscale.compiler.plan import Plan

KINDS = """
CREATE TABLE kinds AS
SELECT i AS row_id,
       i * 1.5 AS measure,                                        -- DECIMAL
       CAST(i AS DOUBLE) / 7 AS ratio,                            -- DOUBLE
       i % 2 AS flag01,                                           -- INTEGER holding 0 and 1
       i % 3 = 0 AS is_third,                                     -- BOOLEAN
       ['a', 'b', 'c'][i % 3 + 1] AS colour,                      -- low-cardinality VARCHAR
       repeat('word ', 10 + i % 5) AS note,                       -- long VARCHAR: text
       'user-' || i AS handle,                                    -- unique per row: an identifier
       [i % 5, (i + 1) % 5] AS recent,                            -- LIST: sequence
       TIMESTAMP '2026-01-01' + INTERVAL (i) HOUR AS seen_at,     -- TIMESTAMP: never an input
       CAST(i % 2 AS INTEGER) AS label
FROM range(200) AS t(i)
"""

NEW_TABLE = """
CREATE TABLE measurements AS
SELECT i AS n, {columns}, CAST(i % 3 = 0 AS INTEGER) AS target
FROM range(455) AS t(i)
"""


@pytest.fixture
def warehouse(project: Path) -> Path:
    path = project / ".rs" / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(f"sin(i * {k + 1}) * {k + 2} + {k} AS m{k:02d}" for k in range(30))
    with duckdb.connect(str(path)) as con:
        con.execute(KINDS)
        con.execute(NEW_TABLE.format(columns=columns))
    return path


@pytest.fixture
def seeded(project: Path) -> Path:
    from rscale.compiler.stack import DuckDBWarehouse
    from rscale.data.seed import seed_demo

    seed_demo(DuckDBWarehouse(), sessions=1500, seed=3)
    return project


def _compile(text: str, *overrides: str, offline: bool = False):
    return compile_document(load_text(text, "specs/new.yaml"), list(overrides), offline=offline)


def _problems(text: str, *overrides: str, offline: bool = False) -> list:
    with pytest.raises(SpecError) as caught:
        _compile(text, *overrides, offline=offline)
    return caught.value.problems


TWELVE_LINES = """\
spec_version: 1
name: cancer
data:
  query: SELECT * FROM measurements
features:
  id: n
  target: target
model: {type: tabular}
"""


def test_a_new_numeric_table_needs_a_spec_of_at_most_twelve_lines(warehouse: Path) -> None:
    assert len(TWELVE_LINES.splitlines()) <= 12
    compiled = _compile(TWELVE_LINES)
    plan = compiled.plans[0]
    assert [f.name for f in plan.features.inputs] == [f"m{k:02d}" for k in range(30)]
    assert {f.type for f in plan.features.inputs} == {"numeric"}  # DOUBLE is numeric (stumble 2)
    assert plan.features.target.model_dump() == {"name": "target", "type": "binary"}
    assert plan.task == "classification"
    # defaults that fit: no time column -> random split; evaluate from the task (stumble 3)
    assert plan.split.by == "random"
    assert plan.evaluate.metrics == ["auc", "accuracy"]
    assert plan.evaluate.baseline is None  # left out: the task's fair baselines, the gate against the strongest
    assert plan.evaluate.baseline_names(plan.task) == ["gbdt", "logistic", "majority"]
    assert plan.evaluate.gate is not None and plan.evaluate.gate.metric == "auc"
    assert plan.checks == () and plan.serving.tier == "local" and plan.tracker.kind == "mlflow"


def test_inferred_features_are_frozen_into_the_plan(warehouse: Path, project: Path) -> None:
    from rscale.compiler.emit import emit

    plan = _compile(TWELVE_LINES).plans[0]
    build = emit(plan)
    with duckdb.connect(str(warehouse)) as con:  # the table changes after compiling
        con.execute("ALTER TABLE measurements ADD COLUMN extra DOUBLE DEFAULT 1.0")
        con.execute("ALTER TABLE measurements DROP COLUMN m29")
    frozen = Plan.read(build / "plan.json")
    assert [f.name for f in frozen.features.inputs][-1] == "m29" and len(frozen.features.inputs) == 30
    assert json.loads((build / "plan.json").read_text())["features"]["inputs"][0] == {"name": "m00", "type": "numeric"}
    recompiled = _compile(TWELVE_LINES).plans[0]  # compiling again sees the new table, and a new plan hash
    assert "extra" in [f.name for f in recompiled.features.inputs] and recompiled.hash != plan.hash


KINDS_SPEC = """\
spec_version: 1
name: kinds
data:
  query: SELECT * FROM kinds
features:
  id: row_id
  inputs: all
  target: label
model: {type: custom, module: "pkg.mod:Model"}
"""


def test_each_warehouse_type_gets_its_feature_type(warehouse: Path) -> None:
    compiled = _compile(KINDS_SPEC)
    inputs = {f.name: f.type for f in compiled.plans[0].features.inputs}
    assert inputs == {
        "measure": "numeric", "ratio": "numeric", "flag01": "binary", "is_third": "binary",
        "colour": "categorical", "note": "text", "recent": "sequence",
    }
    why = {i.column: (i.role, i.reason) for i in compiled.inferred}
    assert why["seen_at"][0] == "skipped" and "TIMESTAMP" in why["seen_at"][1]
    assert why["handle"][0] == "skipped" and "identifier" in why["handle"][1]
    assert why["row_id"] == ("left out", "the id")
    assert "averaging" in why["note"][1] and "> 40" in why["note"][1]


def test_all_leaves_out_the_time_column_and_exclude_and_what_the_model_cannot_read(warehouse: Path) -> None:
    text = KINDS_SPEC.replace("model: {type: custom, module: \"pkg.mod:Model\"}", "model: {type: tabular}").replace(
        "  inputs: all\n", "  inputs: all\n  exclude: [ratio]\n"
    ).replace("  query:", "  time_column: seen_at\n  query:")
    compiled = _compile(text)
    plan = compiled.plans[0]
    assert [f.name for f in plan.features.inputs] == ["measure", "flag01", "is_third", "colour"]
    assert plan.split.by == "time"  # a time column: split by time
    why = {i.column: (i.role, i.reason) for i in compiled.inferred}
    assert why["ratio"] == ("left out", "in features.exclude")
    assert why["seen_at"] == ("left out", "the time column")
    assert why["note"][0] == "skipped" and "does not read text" in why["note"][1]


def test_bare_names_are_typed_from_the_warehouse_next_to_written_ones(warehouse: Path) -> None:
    text = KINDS_SPEC.replace("  inputs: all\n", "  inputs: [ratio, colour, {name: flag01, type: numeric}]\n")
    plan = _compile(text).plans[0]
    assert [(f.name, f.type) for f in plan.features.inputs] == [
        ("ratio", "numeric"), ("colour", "categorical"), ("flag01", "numeric")
    ]


def test_a_bare_name_that_is_not_a_column_points_at_its_line(warehouse: Path) -> None:
    text = KINDS_SPEC.replace("  inputs: all\n", "  inputs:\n    - ratio\n    - colur\n")
    (problem,) = _problems(text)
    assert problem.dotted == "features.inputs[1]"
    assert problem.location is not None and problem.location.line == 9
    assert "did you mean `colour`?" in (problem.fix or "")


def test_a_bare_name_of_a_type_no_model_reads_is_an_error(warehouse: Path) -> None:
    text = KINDS_SPEC.replace("  inputs: all\n", "  inputs: [ratio, seen_at]\n")
    (problem,) = _problems(text)
    assert problem.message.startswith("cannot infer a feature type for input `seen_at`")
    assert problem.dotted == "features.inputs[1]"


def test_exclude_of_a_missing_column_and_exclude_without_all(warehouse: Path) -> None:
    (problem,) = _problems(KINDS_SPEC.replace("  inputs: all\n", "  inputs: all\n  exclude: [nope]\n"))
    assert problem.dotted == "features.exclude[0]" and "is not in the query's result" in problem.message
    (problem,) = _problems(KINDS_SPEC.replace("  inputs: all\n", "  inputs: [ratio]\n  exclude: [colour]\n"))
    assert problem.message == "features.exclude only applies to `inputs: all`"


def test_offline_inference_is_one_clear_error(project: Path) -> None:
    (problem,) = _problems(TWELVE_LINES, offline=True)
    assert "needs the warehouse to infer the columns' types" in problem.message
    assert problem.dotted == "features.inputs"
    assert "--offline" in problem.message and "{name: ..., type: ...}" in (problem.fix or "")
    typed = TWELVE_LINES.replace("  target: target\n", "  inputs: [{name: m00, type: numeric}]\n  target: target\n")
    (problem,) = _problems(typed, offline=True)
    assert problem.dotted == "features.target"


def test_typed_features_and_defaults_compile_offline(project: Path) -> None:
    text = TWELVE_LINES.replace(
        "  target: target\n", "  inputs: [{name: m00, type: numeric}]\n  target: {name: target, type: numeric}\n"
    )
    plan = _compile(text, offline=True).plans[0]
    assert plan.task == "regression" and plan.evaluate.metrics == ["rmse", "mae", "r2"]
    assert plan.evaluate.baseline_names(plan.task) == ["gbdt", "linear", "mean"] and plan.split.by == "random"


def test_a_time_split_without_a_time_column_points_at_by(project: Path) -> None:
    text = TWELVE_LINES.replace("  target: target\n", "  inputs: [{name: m00, type: numeric}]\n"
                                "  target: {name: target, type: binary}\nsplit:\n  by: time\n")
    (problem,) = _problems(text, offline=True)
    assert problem.message == "a time split needs a time column"
    assert problem.dotted == "split.by"
    assert problem.location is not None and (problem.location.line, problem.location.column) == (10, 3)


def test_conversion_with_inputs_all_and_one_exclude_gives_todays_features(seeded: Path) -> None:
    written = compile_spec("specs/conversion.yaml").plans[0]
    text = Path("specs/conversion.yaml").read_text()
    inferred_text, count = re.subn(
        r"  inputs:\n(    - .*\n)+  target: \{name: purchased, type: binary\}\n",
        "  inputs: all\n  exclude: [session_start]\n  target: purchased\n",
        text,
    )
    assert count == 1
    inferred = compile_document(load_text(inferred_text, "specs/conversion.yaml")).plans[0]
    assert inferred.features == written.features
    assert inferred.hash == written.hash


def test_explain_prints_each_inferred_feature_and_every_default(warehouse: Path, project: Path) -> None:
    from typer.testing import CliRunner

    from rscale.cli.app import app
    from rscale.cli.main import main  # noqa: F401  (registers the commands)

    Path("specs/cancer.yaml").write_text(TWELVE_LINES)
    result = CliRunner().invoke(app, ["compile", "--explain", "specs/cancer.yaml"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"m00\s+│ DOUBLE\s+│ input\s+│ numeric\s+│ DOUBLE is a number", out)
    assert re.search(r"target\s+│ INTEGER\s+│ target\s+│ binary", out)
    for section in ("checks", "split", "train", "evaluate", "tracker", "serving"):
        assert re.search(rf"│ {section}\s+│", out), section
    assert '{"metrics": ["auc", "accuracy"], "baseline": ["gbdt", "logistic", "majority"], "gate": {"metric": "auc", "min_lift": 0.0, "resamples": 1000}}' in out
    assert "splitting at random, because the data has no time column" in out
