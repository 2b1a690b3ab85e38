"""The package format: save, load, predict round trip; the manifest; request errors; weights-only files."""

import json

import pytest
import torch
from conftest import conversion_table, recs_table

from rscale.errors import RscaleError
from rscale.models.package import ModelPackage, RequestError
from rscale.models.training import train


@pytest.fixture(scope="module")
def recs_package(tmp_path_factory, recs_plan):
    plan = recs_plan.model_copy(update={"train": recs_plan.train.model_copy(update={"max_epochs": 2})})
    workdir = tmp_path_factory.mktemp("recs")
    return train(plan, recs_table(500, 1), recs_table(100, 2), workdir, progress=False).package_dir


def test_layout_and_manifest(recs_package, recs_plan):
    files = {p.name for p in __import__("pathlib").Path(recs_package).iterdir()}
    assert files == {"manifest.json", "model_config.json", "preprocess.json", "weights.pt"}
    manifest = json.loads((__import__("pathlib").Path(recs_package) / "manifest.json").read_text())
    assert manifest["name"] == "recs" and manifest["model_type"] == "session_rec" and manifest["task"] == "ranking"
    assert manifest["plan_hash"] == recs_plan.hash and manifest["version"].endswith(recs_plan.hash[:8])
    assert {"torch", "pytorch_lightning", "python"} <= set(manifest["frameworks"])
    assert manifest["request_schema"]["properties"]["items"]["type"] == "array"
    assert manifest["metrics"] == {}
    state = torch.load(__import__("pathlib").Path(recs_package) / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # a state_dict, never a pickled module


def test_round_trip_predicts_the_same(recs_package, tmp_path):
    package = ModelPackage.load(recs_package)
    records = [{"items": ["item1", "item2"]}, {"items": []}, {"items": ["never-seen"], "session_id": "x"}]
    before = package.predict(records)
    assert [len(r["items"]) for r in before] == [10, 10, 10]
    assert all(r["scores"] == sorted(r["scores"], reverse=True) for r in before)
    assert all("<pad>" not in r["items"] and "<oov>" not in r["items"] for r in before)
    copy = ModelPackage.load(package.save(tmp_path / "copy"))
    assert copy.predict(records) == before
    assert copy.version == package.version and copy.request_schema == package.request_schema


def test_one_record_and_a_batch_agree(recs_package):
    package = ModelPackage.load(recs_package)
    alone = package.predict([{"items": ["item7"]}])[0]
    together = package.predict([{"items": ["item1", "item2", "item3"]}, {"items": ["item7"]}])[1]
    assert alone["items"] == together["items"]
    assert alone["scores"] == pytest.approx(together["scores"], rel=1e-5)


def test_write_metrics_updates_the_manifest(recs_package, tmp_path):
    package = ModelPackage.load(ModelPackage.load(recs_package).save(tmp_path / "p"))
    package.write_metrics({"hit_rate@10": 0.5})
    assert ModelPackage.load(tmp_path / "p").manifest["metrics"] == {"hit_rate@10": 0.5}


def test_request_errors(recs_package):
    package = ModelPackage.load(recs_package)
    for records, message in [
        ([{}], "missing field `items`"),
        ([{"items": "item1"}], "field `items` expected a list of item ids"),
        ([{"items": ["a"], "user": 1}], "unknown field"),
        ([{"items": [None]}], "field `items`"),
        (["items"], "expected an object"),
        ([{"items": ["a"]}, {"item": []}], "record 1"),
    ]:
        with pytest.raises(RequestError, match=message):
            package.validate(records)
        with pytest.raises(ValueError):
            package.predict(records)


def test_binary_package_response(tmp_path, conversion_plan):
    result = train(conversion_plan, conversion_table(300), conversion_table(100, 1), tmp_path, progress=False)
    package = ModelPackage.load(result.package_dir, threads=1)
    record = {"n_views": 3, "n_carts": 1, "n_categories": 2, "duration_s": 40.0, "avg_price": 12.5, "device": "tablet"}
    out = package.predict([record])[0]
    assert set(out) == {"probability", "label"} and out["label"] == int(out["probability"] >= 0.5)
    assert package.manifest["response"]["probability"]


def test_loading_something_else_says_what_is_missing(tmp_path):
    with pytest.raises(RscaleError, match="not a model package: manifest.json is missing"):
        ModelPackage.load(tmp_path)
