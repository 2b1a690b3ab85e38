"""Preprocessing: fitted on train only, vectorised encoding, OOV and padding, and the serving path agrees."""

import json

import numpy as np
import pyarrow as pa
import pytest
from conftest import conversion_table, plan_for
from pydantic import ValidationError

from rscale.compiler.spec.model import SessionRecConfig, TextConfig
from rscale.models.fitted import FittedState
from rscale.models.package import RequestError
from rscale.models.preprocess import OOV, PAD, RESERVED, Preprocessor
from rscale.serving.codec import RequestCodec


def test_sequence_vocabulary_shared_with_target_and_last_items_kept(recs_plan):
    train = pa.table({
        "items": pa.array([["a", "b", None], ["b"], [], None], pa.list_(pa.string())),
        "next_item": ["c", "b", "b", "a"],
    })
    pre = Preprocessor.fit(recs_plan, train)
    vocab = pre.vocabularies["items"]
    assert vocab[0] == "b"  # most frequent first
    assert set(vocab) == {"a", "b", "c"}
    batch = pre.transform(train)
    index = {t: i + RESERVED for i, t in enumerate(vocab)}
    assert batch["lengths"].tolist() == [2, 1, 0, 0]  # the null element and the null list are dropped
    assert batch["sequence"][0, :3].tolist() == [index["a"], index["b"], PAD]
    assert batch["target"].tolist() == [index["c"], index["b"], index["b"], index["a"]]
    unseen = pre.transform(pa.table({"items": pa.array([["zzz", "a"]]), "next_item": ["nope"]}))
    assert unseen["sequence"][0, :2].tolist() == [OOV, index["a"]]
    assert unseen["target"].tolist() == [OOV]


def test_sequence_truncates_to_the_last_max_len_items():
    plan = plan_for("recs", ["model.max_len=3"])
    table = pa.table({"items": pa.array([["a", "b", "c", "d", "e"]]), "next_item": ["a"]})
    pre = Preprocessor.fit(plan, table)
    batch = pre.transform(table)
    index = {t: i + RESERVED for i, t in enumerate(pre.vocabularies["items"])}
    assert batch["sequence"][0].tolist() == [index["c"], index["d"], index["e"]]
    served = RequestCodec.of(pre).encode([{"items": ["a", "b", "c", "d", "e"]}])
    assert served["sequence"][0].tolist() == batch["sequence"][0].tolist()


def test_settings_a_model_type_lacks_take_the_spec_configs_own_defaults():
    """A custom module reading a sequence or a text input has no max_len/buckets/top_k of its own: the
    preprocessor takes the defaults SessionRecConfig and TextConfig declare, not numbers of its own."""
    defaults = {
        "max_len": SessionRecConfig.model_fields["max_len"].default,
        "top_k": SessionRecConfig.model_fields["top_k"].default,
        "buckets": TextConfig.model_fields["buckets"].default,
    }
    sessions = pa.table({"items": pa.array([["a", "b"]]), "next_item": ["a"]})
    custom_recs = Preprocessor.fit(plan_for("recs", ["model={type:custom,module:'pkg.mod:Model',task:ranking}"]), sessions)
    assert custom_recs.sequence.max_len == defaults["max_len"] == plan_for("recs").model.max_len
    assert custom_recs.state.top_k == defaults["top_k"]
    reviews = pa.table({"review": ["fast shipping"], "purchased": [1]})
    custom_text = Preprocessor.fit(
        plan_for("conversion", ["model={type:custom,module:'pkg.mod:Model'}", "features.inputs=[{name:review,type:text}]"]),
        reviews,
    )
    assert custom_text.state.text.buckets == defaults["buckets"]
    assert Preprocessor.fit(plan_for("recs", ["model.top_k=12"]), sessions).state.top_k == 12  # a written value wins


def test_numeric_stats_from_train_only_and_nulls_become_the_mean(conversion_plan):
    train, other = conversion_table(200, seed=1), conversion_table(50, seed=2)
    pre = Preprocessor.fit(conversion_plan, train)
    price = next(f for f in pre.numeric if f.name == "avg_price")
    assert price.mean == pytest.approx(np.nanmean(train["avg_price"].to_numpy(zero_copy_only=False)))
    batch = pre.transform(other)
    column = [f.name for f in pre.numeric].index("avg_price")
    assert batch["numeric"][:3, column].abs().max() < 1e-6  # NaN -> mean -> 0 after standardising
    assert batch["numeric"].dtype.is_floating_point and not batch["numeric"].isnan().any()
    assert batch["target"].dtype.is_floating_point


def test_records_and_tables_encode_identically(conversion_plan):
    table = conversion_table(20, seed=3)
    pre = Preprocessor.fit(conversion_plan, table)
    inputs = [f.name for f in conversion_plan.features.inputs]
    records = [{k: row[k] for k in inputs} for row in table.to_pylist()[:5]]
    records[0]["device"] = "fridge"  # unknown category: OOV, not an error
    served = RequestCodec.of(pre).encode(records)
    batch = pre.transform(table.slice(0, 5))
    assert np.allclose(served["numeric"].numpy(), batch["numeric"].numpy(), atol=1e-5)
    assert served["categorical"][0, 0] == OOV
    assert served["categorical"][1:].tolist() == batch["categorical"][1:].tolist()


def test_text_hashing_agrees_between_paths():
    plan = plan_for("conversion", ["model={type:text,dim:16,buckets:1024}", "features.inputs=[{name:review,type:text}]"])
    table = pa.table({"review": ["Great, fast shipping!", None, ""], "purchased": [1, 0, 0]})
    pre = Preprocessor.fit(plan, table)
    batch = pre.transform(table)
    served = RequestCodec.of(pre).encode([{"review": "Great, fast shipping!"}, {"review": None}, {"review": ""}])
    assert batch["text"][0, :3].tolist() == served["text"][0, :3].tolist()
    assert (batch["text"][0, :3] > 0).all() and batch["text"][0, 3:].eq(0).all()
    assert batch["text"][1:].eq(0).all()


def test_multiclass_and_regression_targets():
    plan = plan_for("conversion", ["features.target.name=segment", "features.target.type=categorical",
                                   "evaluate.metrics=[accuracy]", "evaluate.baseline=logistic", "evaluate.gate.metric=accuracy"])
    table = conversion_table(100)
    pre = Preprocessor.fit(plan, table)
    assert pre.target.classes == ("browser", "buyer", "visitor")
    assert set(pre.transform(table)["target"].tolist()) <= {0, 1, 2}
    assert pre.transform_target(pa.array(["martian"])).tolist() == [-100]
    regression = plan_for("conversion", ["features.target.name=spend", "features.target.type=numeric",
                                         "evaluate.metrics=[rmse]", "evaluate.baseline=linear", "evaluate.gate.metric=rmse"])
    pre = Preprocessor.fit(regression, table)
    assert abs(float(pre.transform(table)["target"].mean())) < 1e-4  # standardised


def test_request_errors_name_the_field(conversion_plan):
    pre = Preprocessor.fit(conversion_plan, conversion_table(30))
    good = {"n_views": 1, "n_carts": 0, "n_categories": 1, "duration_s": 3.5, "avg_price": None, "device": "mobile"}
    RequestCodec.of(pre).encode([good])
    RequestCodec.of(pre).encode([dict(good, session_id="abc")])  # the id column is allowed
    cases = [
        ({k: v for k, v in good.items() if k != "n_carts"}, "missing field `n_carts`"),
        (dict(good, n_views="many"), "field `n_views` expected a number"),
        (dict(good, device=["x"]), "field `device` expected a string or integer"),
        (dict(good, colour="red"), "unknown field(s) colour"),
    ]
    for record, message in cases:
        with pytest.raises(RequestError, match=message.replace("(", r"\(").replace(")", r"\)")):
            RequestCodec.of(pre).encode([record])
    with pytest.raises(RequestError, match="non-empty list"):
        RequestCodec.of(pre).encode([])
    schema = RequestCodec.of(pre).request_schema()
    assert schema["required"] == [f.name for f in conversion_plan.features.inputs]
    assert schema["additionalProperties"] is False


def test_the_typed_state_round_trips_through_preprocess_json(tmp_path, recs_plan):
    """save then load gives the same typed state and the same tensors; the JSON keeps preprocess.json's
    layout (a target's unused fields left out), so packages written before the typed state still load."""
    train = pa.table({
        "items": pa.array([["a", "b", None], ["b"], [], None], pa.list_(pa.string())),
        "next_item": ["c", "a", "b", None],
    })
    pre = Preprocessor.fit(recs_plan, train)
    path = tmp_path / "preprocess.json"
    pre.save(path)
    loaded = Preprocessor.load(path)
    assert loaded.state == pre.state and isinstance(loaded.state, FittedState)
    saved = json.loads(path.read_text())
    assert list(saved) == ["format", "inputs", "id", "numeric", "categorical", "sequence", "text", "target",
                           "vocabularies", "top_k"]
    assert saved["target"] == {"name": "next_item", "kind": "ranking", "vocab": "items"}
    assert saved["sequence"] == {"name": "items", "vocab": "items", "max_len": recs_plan.model.max_len}
    for name, tensor in pre.transform(train).items():
        assert loaded.transform(train)[name].equal(tensor), name
    with pytest.raises(ValidationError):  # fitted state is frozen: a fit's statistics never change after it
        pre.state.target.vocab = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="top_k"):  # a malformed file names the key
        Preprocessor.from_dict({key: value for key, value in saved.items() if key != "top_k"})
