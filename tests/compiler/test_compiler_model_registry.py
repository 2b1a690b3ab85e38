"""Models declare their tasks and inputs where they register; task_of and the cross-field checks ask them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscale.compiler.compilation import compile_document, compile_spec
from rscale.compiler.errors import SpecError
from rscale.compiler.load import load_text
from rscale.compiler.spec.model import MODELS

REPO = Path(__file__).resolve().parents[2]


def _task(spec: str, overrides: list[str]) -> str:
    return str(compile_spec(REPO / "specs" / f"{spec}.yaml", overrides, offline=True).plans[0].task)


def test_every_registered_model_declares_its_tasks():
    for name in MODELS.names():
        config = MODELS.entry(name).config
        assert config.tasks and set(config.tasks) <= {"ranking", "classification", "regression"}, name  # type: ignore[attr-defined]


def test_the_task_is_what_the_model_declares_for_the_target():
    assert _task("recs", []) == "ranking"
    assert _task("conversion", []) == "classification"  # tabular, binary target
    regression = ["features.target.name=spend", "features.target.type=numeric", "evaluate.metrics=[rmse]",
                  "evaluate.baseline=linear", "evaluate.gate.metric=rmse"]
    assert _task("conversion", regression) == "regression"  # tabular, numeric target
    custom = "model={type:custom,module:'pkg.mod:Model',task:ranking}"
    assert _task("recs", [custom]) == "ranking"  # a custom module's task is the one the spec names


def test_an_input_the_model_does_not_declare_names_the_models_that_read_it():
    text = (REPO / "specs" / "conversion.yaml").read_text()
    with pytest.raises(SpecError) as caught:
        compile_document(load_text(text, "s.yaml"), ["features.inputs=[{name:review,type:text}]"], offline=True)
    [problem] = [p for p in caught.value.problems if "cannot read" in p.message]
    assert problem.message == "a tabular model cannot read `text` input `review`"
    assert problem.fix == "use numeric, categorical or binary inputs, or the `text` model"
