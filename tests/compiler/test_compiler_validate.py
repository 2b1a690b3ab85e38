"""Validation behaviour beyond the corpus: all errors at once, secrets never echoed, upgrades, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscale.compiler.compilation import compile_document, compile_spec
from rscale.compiler.errors import SpecError
from rscale.compiler.load import load_text
from rscale.compiler.validate import UPGRADES, register_upgrade, validate

REPO = Path(__file__).resolve().parents[2]


def _spec(name: str = "conversion") -> str:
    return (REPO / "specs" / f"{name}.yaml").read_text()


def _problems(text: str, overrides: list[str] | None = None) -> list:
    with pytest.raises(SpecError) as caught:
        compile_document(load_text(text, "s.yaml"), overrides or [], offline=True)
    return caught.value.problems


def test_several_mistakes_are_reported_together_in_file_order() -> None:
    text = (
        _spec()
        .replace("  lr: 0.003", "  lrr: 0.003")
        .replace("type: tabular", "type: tabulr")
        .replace("[auc, accuracy]", "[auc, acuracy]")
        .replace("{name: device, type: categorical}", "{name: device, type: categorcal}")
    )
    problems = _problems(text, ["train.batch_size=big"])
    assert [p.dotted for p in problems] == [
        "features.inputs[4].type",
        "model.type",
        "train.batch_size",
        "train.lrr",
        "evaluate.metrics[1]",
    ]
    assert all(p.location and p.location.line and p.fix for p in problems)
    assert problems[2].override == "train.batch_size=big"
    assert "did you mean `categorical`?" in (problems[0].fix or "")


def test_duplicate_keys_come_with_the_field_errors() -> None:
    text = _spec().replace("  lr: 0.003", "  lr: 0.003\n  lr: 0.1").replace("batch_size: 256", "batch_size: many")
    messages = [p.message for p in _problems(text)]
    assert any(m.startswith("duplicate key `lr`") for m in messages)
    assert "expected a whole number, got `many`" in messages


def test_literal_secret_never_appears_in_the_error() -> None:
    token = "eyJhcGlfa2V5IjoiZmFrZSJ9abc"
    text = _spec().replace("tracker: {kind: mlflow}", f"tracker: {{kind: neptune, project: a/b, api_token: {token}}}")
    with pytest.raises(SpecError) as caught:
        compile_document(load_text(text, "s.yaml"), offline=True)
    rendered = caught.value.render()
    assert "api_token" in rendered and "********" in rendered
    assert token not in rendered and token not in str(caught.value)
    assert len(caught.value.problems) == 1  # the scan and the SecretRef field check are one mistake


def test_secret_from_an_override_is_masked_too() -> None:
    text = _spec().replace("tracker: {kind: mlflow}", "tracker: {kind: neptune, project: a/b}")
    with pytest.raises(SpecError) as caught:
        compile_document(load_text(text, "s.yaml"), ["tracker.api_token=hunter2hunter2"], offline=True)
    rendered = caught.value.render()
    assert "hunter2hunter2" not in rendered
    assert "tracker.api_token=********" in rendered


def test_references_are_kept_as_references() -> None:
    text = _spec().replace(
        "tracker: {kind: mlflow}", "tracker: {kind: neptune, project: a/b, api_token: '${env:NEPTUNE_API_TOKEN}'}"
    )
    compiled = compile_document(load_text(text, "s.yaml"), offline=True)
    assert compiled.plans[0].tracker.api_token == "${env:NEPTUNE_API_TOKEN}"
    assert "${env:NEPTUNE_API_TOKEN}" in compiled.plans[0].to_json()


def test_registered_upgrade_hook_lifts_an_old_spec() -> None:
    old = _spec().replace("spec_version: 1", "spec_version: 0").replace("  lr: 0.003", "  learning_rate: 0.003")

    def rename_learning_rate(tree: dict) -> dict:
        tree["train"]["lr"] = tree["train"].pop("learning_rate")
        return tree

    assert 0 not in UPGRADES
    register_upgrade(0)(rename_learning_rate)
    try:
        doc = load_text(old, "old.yaml")
        spec = validate(doc)
        assert spec.spec_version == 1 and spec.train.lr == 0.003
        assert doc.tree["spec_version"] == 0  # the loaded tree is not changed in place
    finally:
        UPGRADES.pop(0)
    with pytest.raises(SpecError, match="spec_version 0 is not supported"):
        validate(load_text(old, "old.yaml"))


def test_a_far_too_old_spec_version_is_one_problem_naming_the_first_missing_upgrade() -> None:
    # found by the fuzz test: the check listed every version from spec_version up (10**40 of them here)
    problems = _problems(_spec().replace("spec_version: 1", "spec_version: -10000000000000000000000000000000000000000"))
    assert [p.message for p in problems if p.dotted == "spec_version"] == [
        "spec_version -10000000000000000000000000000000000000000 is not supported (no upgrade from version "
        "-10000000000000000000000000000000000000000)"
    ]


def test_unknown_key_inside_union_member_and_list_item_names_its_own_block() -> None:
    text = _spec().replace("{type: range, column: avg_price, min: 0}", "{type: range, column: avg_price, minimum: 0}")
    text = text.replace("serving: {tier: local}", "serving: {tier: custom, build: {base: python}}")
    problems = {p.dotted: p for p in _problems(text)}
    assert "allowed keys here: column, max, min, name, severity, type" in (problems["checks[3].minimum"].fix or "")
    assert "did you mean `base_image`?" in (problems["serving.build.base"].fix or "")


def test_override_to_a_key_in_neither_yaml_nor_schema() -> None:
    (problem,) = _problems(_spec(), ["train.learning_rat=0.1"])
    assert problem.message == "unknown key `learning_rat`"
    assert problem.override == "train.learning_rat=0.1"
    assert "allowed keys here" in (problem.fix or "")
    (problem,) = _problems(_spec(), ["+model.dimm=8"])
    assert problem.dotted == "model.dimm" and problem.override == "+model.dimm=8"


def test_override_may_set_a_schema_key_the_yaml_leaves_out() -> None:
    compiled = compile_document(load_text(_spec(), "s.yaml"), ["train.weight_decay=0.01"], offline=True)
    assert compiled.plans[0].train.weight_decay == 0.01


def test_sweep_problems_are_reported_once() -> None:
    problems = _problems(_spec(), ["train.lr=0.1,0.2,0.3", "model.dropout=2"])
    assert len(problems) == 1 and problems[0].dotted == "model.dropout"


def test_query_file_is_read_relative_to_the_spec(tmp_path: Path) -> None:
    text = _spec()
    start = text.index("  query: |")
    end = text.index("checks:")
    (tmp_path / "q.sql").write_text(text[start:end].split("|", 1)[1])
    spec = tmp_path / "s.yaml"
    spec.write_text(text[:start] + "  query_file: q.sql\n\n" + text[end:])
    assert "GROUP BY" in compile_spec(spec, offline=True).plans[0].data.source_sql
    spec.write_text(text[:start] + "  query_file: missing.sql\n\n" + text[end:])
    with pytest.raises(SpecError, match="query file not found"):
        compile_spec(spec, offline=True)


def test_missing_spec_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        compile_spec(tmp_path / "nope.yaml")


def test_invalid_stack_file_is_reported_with_its_own_snippet(tmp_path: Path) -> None:
    stack = tmp_path / "bad.yaml"
    stack.write_text("name: bad\nwarehouse: {kind: duckdb, pth: x}\n")
    with pytest.raises(SpecError) as caught:
        compile_spec(REPO / "specs" / "recs.yaml", stack=str(stack), offline=True)
    (problem,) = caught.value.problems
    assert problem.location is not None and (problem.location.file, problem.location.line) == (str(stack), 2)
    assert "did you mean `path`?" in (problem.fix or "")
    assert "2 | warehouse: {kind: duckdb, pth: x}" in caught.value.render()
