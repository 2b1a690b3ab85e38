"""Drift and live-metric statistics: PSI, out-of-vocabulary share, hit rate, MRR, AUC and accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rscale.monitoring import drift
from rscale.monitoring.live import auc, live_metric_name, score


def test_psi_is_zero_for_the_same_data_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, 5000)
    assert drift.numeric_psi(train, train) == pytest.approx(0.0, abs=1e-9)
    assert drift.numeric_psi(train, rng.normal(0, 1, 5000)) < 0.05
    assert drift.numeric_psi(train, rng.normal(1.0, 1, 5000)) > 0.2
    # missing values have their own bin: a served input gone null is drift too
    assert drift.numeric_psi(train, [None] * 100 + list(train[:100])) > 0.2


def test_psi_matches_the_formula_on_a_small_histogram() -> None:
    # bins (0.25, 0.75) in training, (0.5, 0.5) served
    got = drift.psi([25, 75], [50, 50])
    assert got == pytest.approx((0.5 - 0.25) * np.log(0.5 / 0.25) + (0.5 - 0.75) * np.log(0.5 / 0.75))
    assert drift.psi([50, 50], [25, 75]) == pytest.approx(got)  # symmetric


def test_categorical_psi_and_oov_share() -> None:
    train = ["mobile"] * 60 + ["desktop"] * 30 + ["tablet"] * 10
    assert drift.categorical_psi(train, train) == pytest.approx(0.0, abs=1e-9)
    assert drift.categorical_psi(train, ["tablet"] * 100) > 1.0
    # the most frequent categories moving is drift; new values in a long tail are left to the OOV share
    head = ["a"] * 300 + ["b"] * 300 + [f"i{n}" for n in range(400)]
    assert drift.categorical_psi(head, ["a"] * 900 + ["b"] * 100) > 0.2
    assert drift.categorical_psi(head, ["a"] * 300 + ["b"] * 300 + [f"new{n}" for n in range(400)]) < 0.1
    assert drift.oov_share(["a", "b", "new", None], {"a", "b"}) == pytest.approx(1 / 3)
    assert drift.tokens([["a", "b"], None, ["c"]]) == ["a", "b", "c"]


def test_live_ranking_metrics_from_logged_responses() -> None:
    outputs = [json.dumps({"items": ["a", "b", "c"]}), json.dumps({"items": ["x", "y"]}), json.dumps({"items": ["q"]})]
    outcomes = ["b", "z", "q"]
    assert score("hit_rate@10", outputs, outcomes) == pytest.approx(2 / 3)
    assert score("hit_rate@1", outputs, outcomes) == pytest.approx(1 / 3)
    assert score("mrr@10", outputs, outcomes) == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert live_metric_name(["ndcg@10", "hit_rate@10"]) == "hit_rate@10"


def test_live_classification_metrics() -> None:
    outputs = [json.dumps({"probability": p, "label": int(p >= 0.5)}) for p in (0.9, 0.8, 0.3, 0.2, 0.6)]
    outcomes = [1, 1, 0, 0, 0]
    assert score("accuracy", outputs, outcomes) == pytest.approx(0.8)
    assert score("auc", outputs, outcomes) == pytest.approx(1.0)
    # ties share their rank: one positive and one negative with the same score is half a correct pair
    assert auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)
    assert np.isnan(auc(np.array([0.1, 0.2]), np.array([True, True])))
    with pytest.raises(ValueError, match="live metrics"):
        score("rmse", outputs, outcomes)


def test_traffic_counts_a_latency_once_per_request_in_either_log_format(project: Path) -> None:
    """A request's latency weighs once in the percentiles: the line of a request of N records (the format
    now) and the N per-record lines of earlier versions (each repeating the latency) alike."""
    from datetime import UTC, datetime, timedelta

    from rscale.monitoring.monitor import _traffic
    from rscale.paths import predictions_dir
    from rscale.serving.server import PredictionLog

    now = datetime.now(UTC)
    log = PredictionLog(predictions_dir("recs"), "1", "h")
    log.record("new-batch", now.timestamp(), [{"x": i} for i in range(9)], [0.5] * 9, latency_ms=90.0)
    log.record("new-single", now.timestamp(), [{"x": 0}], [0.5], latency_ms=10.0)
    log.flush()
    old = [
        json.dumps({"request_id": "old-batch", "ts": now.isoformat(), "latency_ms": 90.0, "index": index,
                    "inputs": {"x": index}, "outputs": 0.5})
        for index in range(9)
    ] + [json.dumps({"request_id": "old-single", "ts": now.isoformat(), "latency_ms": 10.0, "index": 0,
                     "inputs": {"x": 0}, "outputs": 0.5})]  # fmt: skip
    (predictions_dir("recs") / "19700101T000000000000Z-1.jsonl").write_text("\n".join(old) + "\n")
    p50, p99, errors = _traffic("recs", (now - timedelta(hours=1)).replace(tzinfo=None))
    assert p50 == 50.0  # two requests of 90 ms, two of 10 ms: not 18 lines of 90 ms and 2 of 10 ms
    assert p99 is not None and errors is None
