"""Editor schema and key reference: generated from the models, committed, and tested to match them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rscale.compiler.spec.model import MODELS
from rscale.compiler.spec.reference import json_schema, json_schema_text, markdown_reference
from rscale.compiler.spec.serving import SERVING

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate with: rs schema --out schema/spec.schema.json --docs docs/spec-reference.md"


def test_committed_json_schema_is_up_to_date() -> None:
    assert (REPO / "schema" / "spec.schema.json").read_text() == json_schema_text(), REGENERATE


def test_committed_reference_is_up_to_date() -> None:
    assert (REPO / "docs" / "spec-reference.md").read_text() == markdown_reference(), REGENERATE


def test_reference_documents_every_key_of_every_block() -> None:
    from rscale.compiler.validate import _keys_of

    text = markdown_reference()
    for config in [*MODELS.configs(), *SERVING.configs()]:
        for key in _keys_of(config):
            assert f"| `{key}` |" in text


def test_schema_enums_come_from_the_registries() -> None:
    schema = json_schema()
    mapping = schema["properties"]["model"]["discriminator"]["mapping"]
    assert sorted(mapping) == MODELS.names()
    assert sorted(schema["properties"]["serving"]["discriminator"]["mapping"]) == SERVING.names()
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", ["recs", "conversion"])
def test_example_specs_carry_the_modeline_and_satisfy_the_schema(name: str) -> None:
    import jsonschema

    from rscale.compiler.load import load_file

    path = REPO / "specs" / f"{name}.yaml"
    assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../schema/spec.schema.json"
    jsonschema.validate(load_file(path).tree, json_schema())


def test_schema_rejects_what_validation_rejects() -> None:
    import jsonschema

    from rscale.compiler.load import load_file

    tree = load_file(REPO / "specs" / "recs.yaml").tree
    tree["train"]["lrr"] = 0.1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tree, json_schema())


def test_rs_schema_writes_both_files(tmp_path: Path) -> None:
    from rscale.cli import spec  # noqa: F401  (registers the commands)
    from rscale.cli.app import app

    out, docs = tmp_path / "s.json", tmp_path / "ref.md"
    result = CliRunner().invoke(app, ["schema", "--out", str(out), "--docs", str(docs)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["title"].startswith("rscale spec")
    assert docs.read_text() == markdown_reference()
