"""Baselines on data where the answer is known, and the gate in both directions."""

import numpy as np
import pyarrow as pa
import pytest
from conftest import conversion_table, plan_for, recs_table

from rscale.compiler.spec.evaluate import Gate
from rscale.models.baselines import fit_baseline
from rscale.models.evaluation import decide_gate, evaluate
from rscale.models.training import train


def test_popularity_recommends_the_most_frequent_next_items(recs_plan):
    train_table = pa.table({"items": pa.array([["a"], ["b"], ["c"], ["a"]]), "next_item": ["x", "x", "y", "z"],
                            "session_id": list("1234")})
    baseline = fit_baseline("popularity", train_table, recs_plan)
    test = pa.table({"items": pa.array([["a"], ["b"], ["c"]]), "next_item": ["x", "y", "unknown"],
                     "session_id": list("567")})
    scores = baseline.score(test)
    assert scores["hit_rate@10"] == pytest.approx(2 / 3)  # x and y are in the list, unknown is a miss
    assert scores["mrr@10"] == pytest.approx((1 + 1 / 2) / 3)  # x first, y second


def test_item_to_item_uses_the_last_item_and_falls_back_to_popularity(recs_plan):
    train_table = recs_table(800, seed=1)
    test = recs_table(300, seed=2)
    item_to_item = fit_baseline("item_to_item", train_table, recs_plan).score(test)
    popularity = fit_baseline("popularity", train_table, recs_plan).score(test)
    assert item_to_item["hit_rate@10"] > popularity["hit_rate@10"] + 0.3
    cold = fit_baseline("item_to_item", train_table, recs_plan)
    batch = cold.preprocessor.transform(pa.table({"items": pa.array([["never-seen"], []], pa.list_(pa.string())),
                                                  "next_item": ["item1", "item1"]}))
    top = cold.top_k(batch, 10)
    assert (top >= 2).all() and (top[0] == cold.ranking[:10]).all()  # unknown last item: popular items


def test_classification_and_regression_baselines():
    table, test = conversion_table(1500, 1), conversion_table(500, 2)
    binary = plan_for("conversion", ["evaluate.metrics=[auc,accuracy,f1,log_loss]"])
    majority = fit_baseline("majority", table, binary).score(test)
    rate = float(np.mean(table["purchased"].to_numpy()))
    assert majority["auc"] == 0.5
    assert majority["accuracy"] == pytest.approx(max(np.mean(test["purchased"].to_numpy()),
                                                     1 - np.mean(test["purchased"].to_numpy())))
    logistic = fit_baseline("logistic", table, binary).score(test)
    assert logistic["auc"] > 0.75 and logistic["log_loss"] < majority["log_loss"]
    assert 0 < rate < 1
    regression = plan_for("conversion", ["features.target.name=spend", "features.target.type=numeric",
                                         "evaluate.metrics=[rmse,mae,r2]", "evaluate.baseline=linear",
                                         "evaluate.gate.metric=rmse"])
    mean = fit_baseline("mean", table, regression).score(test)
    linear = fit_baseline("linear", table, regression).score(test)
    assert abs(mean["r2"]) < 0.05 and linear["r2"] > 0.9 and linear["rmse"] < 0.7


def test_gate_higher_and_lower_is_better():
    passed = decide_gate(Gate(metric="auc", min_lift=0.1), {"auc": 0.8}, "logistic", {"auc": 0.7})
    assert passed.passed and passed.required_value == pytest.approx(0.77) and "deploy" in passed.reason
    blocked = decide_gate(Gate(metric="auc", min_lift=0.2), {"auc": 0.8}, "logistic", {"auc": 0.7})
    assert not blocked.passed and blocked.required_value == pytest.approx(0.84) and "blocked" in blocked.reason
    lower = decide_gate(Gate(metric="rmse", min_lift=0.1), {"rmse": 0.85}, "mean", {"rmse": 1.0})
    assert lower.passed and lower.required_value == pytest.approx(0.9)
    worse = decide_gate(Gate(metric="rmse", min_lift=0.0), {"rmse": 1.1}, "mean", {"rmse": 1.0})
    assert not worse.passed
    assert decide_gate(None, {}, "none", {}).passed
    no_baseline = decide_gate(Gate(metric="auc"), {"auc": 0.6}, "none", {})
    assert no_baseline.passed and "no baseline" in no_baseline.reason
    assert not decide_gate(Gate(metric="auc"), {"auc": float("nan")}, "majority", {"auc": 0.5}).passed


def test_evaluate_recs_model_beats_popularity(tmp_path):
    plan = plan_for("recs", ["train.max_epochs=5", "model.dim=16", "train.batch_size=128", "train.lr=0.01"])
    train_table, validation, test = recs_table(1500, 1), recs_table(200, 2), recs_table(300, 3)
    result = train(plan, train_table, validation, tmp_path, progress=False)
    evaluation = evaluate(result.package_dir, plan, train_table, test)
    assert set(evaluation.metrics) == {"hit_rate@10", "mrr@10"}
    assert evaluation.baseline == "item_to_item" and set(evaluation.baseline_metrics) == {"hit_rate@10", "mrr@10"}
    assert evaluation.gate.metric == "hit_rate@10" and evaluation.gate.model_value == evaluation.metrics["hit_rate@10"]
    assert evaluation.metrics["hit_rate@10"] > evaluation.baselines["popularity"]["hit_rate@10"]
    assert evaluation.test_rows == 300
    # scored on every next-item position of the 300 test sessions; the interval resamples the sessions
    interval = evaluation.gate.interval
    assert interval is not None and interval.sessions == 300 and interval.rows > 300
    assert "300 test sessions" in evaluation.gate.reason


def test_evaluate_compares_with_the_strongest_of_several_baselines(tmp_path):
    plan = plan_for("conversion", ["evaluate.baseline=[majority,logistic]", "evaluate.gate.min_lift=0.0",
                                   "train.max_epochs=3"])
    table, validation, test = conversion_table(1200, 1), conversion_table(200, 2), conversion_table(400, 3)
    result = train(plan, table, validation, tmp_path, progress=False)
    evaluation = evaluate(result.package_dir, plan, table, test)
    assert set(evaluation.baselines) == {"majority", "logistic"}
    assert evaluation.baselines["logistic"]["auc"] > evaluation.baselines["majority"]["auc"]
    assert evaluation.baseline == "logistic" and evaluation.gate.baseline == "logistic"
    assert evaluation.baseline_metrics == evaluation.baselines["logistic"]
    assert "strongest baseline logistic" in evaluation.gate.reason
    interval = evaluation.gate.interval
    assert interval is not None and interval.resamples == 1000 and interval.rows == 400
    assert interval.low <= evaluation.gate.lift <= interval.high  # type: ignore[operator]
