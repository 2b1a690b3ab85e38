"""Metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from rscale.models import metrics as m


def test_ranking_metrics_by_hand():
    ranks = np.array([0, 2, 5, 10**9])  # hit at 1st, 3rd, 6th place, one unknown item
    assert m.hit_rate_at_k(ranks, 3) == pytest.approx(2 / 4)
    assert m.recall_at_k(ranks, 10) == pytest.approx(3 / 4)
    assert m.mrr_at_k(ranks, 3) == pytest.approx((1 + 1 / 3) / 4)
    assert m.mrr_at_k(ranks, 10) == pytest.approx((1 + 1 / 3 + 1 / 6) / 4)
    assert m.ndcg_at_k(ranks, 3) == pytest.approx((1 + 1 / math.log2(4)) / 4)
    named = m.ranking_metrics(["hit_rate@3", "mrr@10", "ndcg@3", "recall@10"], ranks)
    assert set(named) == {"hit_rate@3", "mrr@10", "ndcg@3", "recall@10"}


def test_ranks_from_top_k():
    top = np.array([[5, 6, 7], [1, 2, 3], [9, 8, 7]])
    assert m.ranks_from_top_k(top, np.array([7, 4, 9])).tolist() == [2, 3, 0]


def test_auc_counts_pairs_and_ties():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs won 1 + 1 + 0.5 (tie) + 1 = 3.5 of 4
    assert m.auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.4, 0.4, 0.1])) == pytest.approx(3.5 / 4)
    assert m.auc(np.array([1, 1]), np.array([0.2, 0.3])) == 0.5  # one class only


def test_multiclass_auc_is_macro_one_vs_rest():
    y = np.array([0, 1, 2])
    perfect = np.eye(3)
    assert m.auc(y, perfect) == pytest.approx(1.0)


def test_accuracy_f1_log_loss():
    y = np.array([1, 0, 1, 1])
    p = np.array([0.9, 0.2, 0.4, 0.6])
    out = m.classification_metrics(["accuracy", "f1", "log_loss"], y, p)
    assert out["accuracy"] == pytest.approx(3 / 4)
    # predictions 1,0,0,1: tp=2 fp=0 fn=1 -> f1 = 4/5
    assert out["f1"] == pytest.approx(4 / 5)
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.6)) / 4
    assert out["log_loss"] == pytest.approx(expected)


def test_multiclass_log_loss_and_macro_f1():
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    out = m.classification_metrics(["accuracy", "log_loss", "f1"], y, p)
    assert out["accuracy"] == pytest.approx(3 / 4)
    assert out["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.6) + math.log(0.2)) / 4)
    # class 0: tp1 fp1 -> 2/3; class 1: 1; class 2: tp1 fn1 -> 2/3
    assert out["f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_regression_metrics():
    y, p = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
    out = m.regression_metrics(["rmse", "mae", "r2"], y, p)
    assert out["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert out["mae"] == pytest.approx(2 / 3)
    assert out["r2"] == pytest.approx(1 - 4 / 2)


def test_logged_names():
    assert m.logged_name("hit_rate@10") == "val_hit_rate_at_10"
    assert m.max_k(["mrr@5", "hit_rate@20", "auc"]) == 20
