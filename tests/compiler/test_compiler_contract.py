"""The data contract against a real DuckDB warehouse: columns and types checked without running the query."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscale.compiler import contract
from rscale.compiler.compilation import compile_spec
from rscale.compiler.errors import SpecError


def _problems(*args: object, **kwargs: object) -> list:
    with pytest.raises(SpecError) as caught:
        compile_spec(*args, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def test_example_specs_meet_their_contract(warehouse: Path) -> None:
    for name in ("recs", "conversion"):
        assert compile_spec(f"specs/{name}.yaml").contract_checked


def test_missing_column_points_at_the_feature_and_lists_the_columns(warehouse: Path) -> None:
    (problem,) = _problems("specs/conversion.yaml", ["features.inputs.0.name=n_view"])
    assert problem.message == "column `n_view` (a numeric input) is not in the query's result"
    assert problem.dotted == "features.inputs[0].name"
    assert problem.override == "features.inputs.0.name=n_view"
    n_views_line = next(i for i, line in enumerate(Path("specs/conversion.yaml").read_text().splitlines(), 1)
                        if "name: n_views" in line)
    assert problem.location is not None and problem.location.line == n_views_line
    assert "did you mean `n_views`?" in (problem.fix or "")
    assert "the query returns: session_id (VARCHAR), n_views (INTEGER)" in (problem.fix or "")


def test_type_the_model_cannot_read_is_an_error(warehouse: Path) -> None:
    (problem,) = _problems("specs/conversion.yaml", ["features.inputs.4.type=numeric"])
    assert problem.message.startswith("column `device` (a numeric input) is VARCHAR in the query's result")
    assert "CAST it to a number" in (problem.fix or "")


def test_every_named_column_is_checked(warehouse: Path) -> None:
    problems = _problems(
        "specs/conversion.yaml", ["features.id=sess", "data.time_column=start", "checks.1.columns.1=bought"]
    )
    assert {p.dotted for p in problems} == {"features.id", "data.time_column", "checks[1].columns[1]"}


def test_query_the_warehouse_cannot_describe(warehouse: Path) -> None:
    (problem,) = _problems("specs/conversion.yaml", ["data.query=SELECT * FROM no_such_table"])
    assert problem.message.startswith("the duckdb warehouse cannot describe the query")
    assert "no_such_table" in problem.message


def test_no_warehouse_yet_is_one_clear_error(project: Path) -> None:
    (problem,) = _problems("specs/recs.yaml")
    assert "does not exist yet" in problem.message
    assert "`rs seed`" in (problem.fix or "") and "--offline" in (problem.fix or "")
    assert compile_spec("specs/recs.yaml", offline=True).contract_checked is False


def test_schema_is_asked_once_for_a_sweep(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = contract.query_schema

    def counting(plan, doc):  # type: ignore[no-untyped-def]
        calls.append(plan.data.sql)
        return real(plan, doc)

    monkeypatch.setattr(contract, "query_schema", counting)
    compiled = compile_spec("specs/conversion.yaml", ["train.lr=0.1,0.2,0.3", "train.seed=1,2"])
    assert len(compiled.plans) == 6 and len(calls) == 1


@pytest.mark.parametrize(
    ("use", "kind", "ok"),
    [
        ("sequence", "VARCHAR[]", True),
        ("sequence", "ARRAY", True),
        ("sequence", "VARCHAR", False),
        ("numeric", "DECIMAL(18,3)", True),
        ("numeric", "NUMBER(38,0)", True),
        ("numeric", "VARCHAR", False),
        ("text", "TEXT", True),
        ("text", "BIGINT", False),
        ("time", "TIMESTAMP WITH TIME ZONE", True),
        ("time", "TIMESTAMP_NTZ", True),
        ("categorical", "INTEGER[]", False),
        ("binary", "BOOLEAN", True),
        ("scalar", "STRUCT(a INTEGER)", False),
        ("numeric", "VARIANT", True),
    ],
)
def test_type_families(use: str, kind: str, ok: bool) -> None:
    assert contract.accepts(use, kind) is ok
