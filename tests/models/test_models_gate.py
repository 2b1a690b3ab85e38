"""The gate's paired bootstrap: resampled metrics agree with the plain ones, intervals, confidence, warnings."""

import numpy as np
import pytest

from rscale.compiler.spec.evaluate import Gate
from rscale.models import metrics as M
from rscale.models.evaluation import decide_gate, strongest_baseline
from rscale.models.metrics import RowOutputs


def _outputs(seed: int = 0, n: int = 300):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int64)
    p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1).round(2)  # rounded: tied scores
    classes = rng.integers(0, 3, n)
    probabilities = rng.dirichlet(np.ones(3), n)
    probabilities[np.arange(n), classes] += 0.5
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    ranks = np.where(rng.random(n) < 0.7, rng.integers(0, 20, n), 1 << 30)  # 1 << 30: an unknown item
    truth = rng.normal(size=n)
    return {
        "binary": (RowOutputs("binary", y, p), ["auc", "accuracy", "f1", "log_loss"]),
        "multiclass": (RowOutputs("multiclass", classes, probabilities), ["auc", "accuracy", "f1", "log_loss"]),
        "ranking": (RowOutputs("ranking", np.zeros(n, np.int64), ranks), ["hit_rate@10", "mrr@10", "ndcg@5", "recall@3"]),
        "regression": (RowOutputs("regression", truth, truth + rng.normal(0, 0.5, n)), ["rmse", "mae", "r2"]),
    }


@pytest.mark.parametrize("kind", ["binary", "multiclass", "ranking", "regression"])
def test_resampled_metric_with_unit_weights_is_the_metric(kind):
    outputs, names = _outputs()[kind]
    plain = M.metrics_of(names, outputs)
    once = np.ones((1, len(outputs)))
    twice = np.full((1, len(outputs)), 2.0)  # every row drawn twice: the same metric
    for name in names:
        assert M.weighted_metric(name, outputs, once)[0] == pytest.approx(plain[name], abs=1e-12), name
        assert M.weighted_metric(name, outputs, twice)[0] == pytest.approx(plain[name], abs=1e-12), name


def test_resampled_auc_matches_auc_of_the_resampled_rows():
    outputs, _ = _outputs(1)["binary"]
    weights = next(M.resample_weights(len(outputs), 5, seed=3))
    for row in weights:
        drawn = np.repeat(np.arange(len(outputs)), row.astype(int))
        expected = M.binary_auc(outputs.target[drawn], outputs.values[drawn])
        assert M.weighted_metric("auc", outputs, row[None, :])[0] == pytest.approx(expected, abs=1e-12)


def test_bootstrap_lift_is_paired_seeded_and_centred():
    model, _ = _outputs(0)["binary"]
    same = M.bootstrap_lift("auc", model, model, 200, seed=0)
    assert np.all(same == 0)  # the same rows for both: no noise of its own
    weaker = RowOutputs("binary", model.target, np.where(np.arange(len(model)) % 3 == 0, 0.5, model.values))
    lifts = M.bootstrap_lift("auc", model, weaker, 500, seed=0)
    point = M.binary_auc(model.target, model.values) - M.binary_auc(weaker.target, weaker.values)
    assert np.quantile(lifts, 0.025) < point < np.quantile(lifts, 0.975)
    assert np.array_equal(lifts, M.bootstrap_lift("auc", model, weaker, 500, seed=0))
    rmse = M.bootstrap_lift("rmse", RowOutputs("regression", np.zeros(50), np.zeros(50)),
                            RowOutputs("regression", np.zeros(50), np.ones(50)), 100)
    assert np.all(rmse == 1.0)  # lower is better: a positive lift means the model is better


def test_gate_reports_the_interval_and_its_confidence_can_block():
    lifts = np.linspace(-0.01, 0.05, 1001)
    gate = decide_gate(Gate(metric="auc", min_lift=0.0), {"auc": 0.82}, "logistic", {"auc": 0.80}, lifts, 400)
    assert gate.passed and gate.baseline == "logistic" and gate.lift == pytest.approx(0.02)
    assert gate.interval is not None and gate.interval.confidence == 0.95
    assert gate.interval.low == pytest.approx(-0.0085, abs=1e-4) and gate.interval.high == pytest.approx(0.0485, abs=1e-4)
    assert "95% interval [-0.0085, +0.0485]" in gate.reason and "400 test rows" in gate.reason
    assert any("too small to tell" in w for w in gate.warnings)  # the interval contains the required lift 0
    sure = decide_gate(Gate(metric="auc", confidence=0.9), {"auc": 0.82}, "logistic", {"auc": 0.80}, lifts, 400)
    assert not sure.passed and "gate.confidence 0.9" in sure.reason and sure.reason.endswith("blocked")
    clear = decide_gate(Gate(metric="auc", confidence=0.9), {"auc": 0.82}, "logistic", {"auc": 0.80},
                        np.linspace(0.01, 0.03, 101), 400)
    assert clear.passed and not clear.warnings


def test_gate_warns_at_the_ceiling_and_when_it_can_never_pass():
    ceiling = decide_gate(Gate(metric="hit_rate@10"), {"hit_rate@10": 1.0}, "item_to_item", {"hit_rate@10": 0.998})
    assert any("at the ceiling" in w for w in ceiling.warnings)
    never = decide_gate(Gate(metric="auc", min_lift=0.2), {"auc": 0.9}, "logistic", {"auc": 0.9})
    assert not never.passed and any("can never pass" in w for w in never.warnings)


def test_strongest_baseline_by_the_metric_direction():
    scores = {"mean": {"rmse": 2.0}, "linear": {"rmse": 1.0}, "gbdt": {"rmse": float("nan")}}
    assert strongest_baseline("rmse", scores) == "linear"
    assert strongest_baseline("r2", scores) is None
    assert strongest_baseline("auc", {"majority": {"auc": 0.5}, "logistic": {"auc": 0.8}}) == "logistic"
