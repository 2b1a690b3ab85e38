"""The request codec: a batch encodes as the training table does, every bad record is named, and the
responses as JSON text say what the response dicts say."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
import torch
from pydantic import ValidationError
from tiny_package import REPO

from rscale.models.fitted import TargetEncoding
from rscale.models.package import RequestError
from rscale.models.preprocess import Preprocessor
from rscale.models.tasks import PredictionNotFinite, task_named
from rscale.serving.codec import RequestCodec

INPUTS = "features.inputs=[{name:n_views,type:numeric},{name:avg_price,type:numeric},{name:returning,type:binary},{name:device,type:categorical}]"
GOOD = {"n_views": 3, "avg_price": 19.5, "returning": True, "device": "mobile"}


def _plan(spec: str, *overrides: str) -> Any:
    from rscale.compiler.compilation import compile_spec

    return compile_spec(REPO / "specs" / f"{spec}.yaml", list(overrides), offline=True).plans[0]


@pytest.fixture(scope="module")
def fitted() -> tuple[Preprocessor, RequestCodec]:
    train = pa.table({
        "n_views": [1.0, 4.0, 9.0, 2.0],
        "avg_price": [10.0, None, 30.5, 12.0],
        "returning": [True, False, True, False],
        "device": ["mobile", "desktop", "mobile", "tablet"],
        "purchased": [1, 0, 1, 0],
    })
    preprocessor = Preprocessor.fit(_plan("conversion", INPUTS), train)
    return preprocessor, RequestCodec.of(preprocessor)


@pytest.mark.parametrize(
    "records",
    [
        # ints and floats only: one conversion of every numeric field
        [dict(GOOD, n_views=i, avg_price=i * 1.5, returning=i % 2) for i in range(40)],
        # bools in the binary field, nulls in a numeric one, the id column in some records, an unseen device
        [dict(GOOD, n_views=i, avg_price=None if i % 3 else 2.5, returning=bool(i % 2), device="fridge" if i == 5 else "tablet")
         | ({"session_id": f"s{i}"} if i % 4 == 0 else {}) for i in range(40)],
        # a null category: the per-record path
        [dict(GOOD, device=None if i == 7 else "desktop") for i in range(12)],
        [GOOD],
    ],
)
def test_a_batch_encodes_as_the_training_table_does(fitted: tuple[Preprocessor, RequestCodec], records: list[dict]) -> None:
    preprocessor, codec = fitted
    served = codec.encode(records)
    table = pa.Table.from_pylist([{name: record[name] for name in GOOD} for record in records])
    expected = preprocessor.transform(table, with_target=False)
    assert served["numeric"].dtype == torch.float32 and served["numeric"].shape == (len(records), 3)
    assert torch.allclose(served["numeric"], expected["numeric"], atol=1e-6)
    assert served["categorical"].tolist() == expected["categorical"].tolist()


def test_every_bad_record_of_a_big_batch_is_named_with_what_was_seen_and_what_to_send(
    fitted: tuple[Preprocessor, RequestCodec],
) -> None:
    _, codec = fitted
    records: list[Any] = [dict(GOOD) for _ in range(100)]
    records[37]["n_views"] = "many"
    records[80]["colour"] = "red"
    del records[90]["device"]
    records[95]["avg_price"] = float("nan")  # not JSON, but the Python API can send it
    records[96]["avg_price"] = 10**400
    records[97]["n_views"] = True
    records[98] = ["not", "a", "record"]
    with pytest.raises(RequestError) as raised:
        codec.encode(records)
    problems = raised.value.problems
    assert problems[:4] == [
        "record 37: field `n_views` expected a number or null, got 'many'",
        "record 80: unknown field(s) colour; expected n_views, avg_price, returning, device",
        "record 90: missing field `device` (a string or integer)",
        "record 95: field `avg_price` expected a number or null, got nan",
    ]
    assert problems[4].startswith("record 96: field `avg_price` expected a number or null, got 1000")
    assert problems[5:] == [
        "record 97: field `n_views` expected a number or null, got True",
        "record 98: expected an object with fields n_views, avg_price, returning, device, got list",
    ]
    assert codec.encode([dict(GOOD, returning=1)])["numeric"].shape == (1, 3)  # 0/1 is a binary value too
    with pytest.raises(RequestError, match="non-empty list"):
        codec.encode([])


def test_sequences_keep_their_last_max_len_items_as_the_table_path_does() -> None:
    plan = _plan("recs", "model.max_len=3", "model.top_k=12")
    train = pa.table({"items": pa.array([["a", "b", "c", "d", "e"], ["b", "c"]]), "next_item": ["a", "c"]})
    preprocessor = Preprocessor.fit(plan, train)
    codec = RequestCodec.of(preprocessor)
    records = [{"items": ["a", "b", "c", "d", "e"]}, {"items": ["zzz", "b"]}, {"items": []}] * 4
    served = codec.encode(records)
    expected = preprocessor.transform(pa.Table.from_pylist(records, schema=pa.schema([("items", pa.list_(pa.string()))])),
                                      with_target=False)
    assert served["lengths"].tolist() == expected["lengths"].tolist() == [3, 2, 0] * 4
    assert served["sequence"].tolist() == expected["sequence"].tolist()  # as wide as the longest: max_len here
    assert codec.response_description()["top_k"] == 12  # the spec's value, written in preprocess.json
    with pytest.raises(RequestError, match=r"record 1: field `items` expected a list of item ids"):
        codec.encode([{"items": ["a"]}, {"items": ["a", True]}])


def test_the_codec_has_no_defaults_of_its_own() -> None:
    plan = _plan("recs")
    preprocessor = Preprocessor.fit(plan, pa.table({"items": pa.array([["a", "b"]]), "next_item": ["a"]}))
    state = preprocessor.to_dict()
    assert RequestCodec(state).response_description()["top_k"] == plan.model.top_k
    assert RequestCodec(state).sequence.max_len == plan.model.max_len  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="top_k"):  # a state without the setting is an error naming it,
        RequestCodec({key: value for key, value in state.items() if key != "top_k"})  # not a number made up here


@pytest.mark.parametrize(
    ("target", "output"),
    [
        ({"name": "purchased", "kind": "binary"}, torch.randn(9, 1)),
        ({"name": "spend", "kind": "regression", "mean": 3.0, "std": 2.0}, torch.randn(9, 1)),
        ({"name": "segment", "kind": "multiclass", "classes": ["a", "b", "c"]}, torch.randn(9, 3)),
        ({"name": "next_item", "kind": "ranking", "vocab": "item"}, torch.randn(9, 6)),
    ],
)
def test_json_responses_say_what_the_response_dicts_say(target: dict[str, Any], output: torch.Tensor) -> None:
    fitted = TargetEncoding.model_validate(target)  # as the codec reads preprocess.json's target
    respond = task_named(fitted.kind).responder(fitted, {"item": ["x", "y", "z", "w"]}, top_k=3)
    texts = respond.texts(output)
    assert [json.loads(text) for text in texts] == respond.records(output)
    assert all(" " not in text for text in texts if target["kind"] in ("binary", "regression"))
    broken = output.clone()
    broken[4] = float("nan")
    with pytest.raises(PredictionNotFinite):
        respond.texts(broken)


@pytest.mark.parametrize("batch", [1, 20])
def test_a_boolean_category_is_looked_up_as_training_spelled_it(batch: int) -> None:
    """Training reads a boolean column declared categorical through Arrow's cast (`true`/`false`); a
    request's JSON `true` must find the same code, not `True` (out of vocabulary), by both paths."""
    inputs = "features.inputs=[{name: n_views, type: numeric}, {name: returning, type: categorical}]"
    train = pa.table({"n_views": [1.0, 4.0, 9.0, 2.0], "returning": [True, False, True, True], "purchased": [1, 0, 1, 0]})
    preprocessor = Preprocessor.fit(_plan("conversion", inputs), train)
    codec = RequestCodec.of(preprocessor)
    records = [{"n_views": 2.0, "returning": i % 2 == 0} for i in range(batch)]
    expected = preprocessor.transform(pa.Table.from_pylist(records), with_target=False)
    served = codec.encode(records)
    assert served["categorical"].tolist() == expected["categorical"].tolist()
    assert 1 not in served["categorical"].flatten().tolist()  # OOV: the old `str(True)` lookup
    slow = codec.encode([{"n_views": 2.0, "returning": None}, {"n_views": 2.0, "returning": True}])  # a null: per record
    assert slow["categorical"].tolist()[1] == expected["categorical"].tolist()[0] and slow["categorical"].tolist()[1] != [1]
