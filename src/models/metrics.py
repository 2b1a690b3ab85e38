"""Evaluation metrics on numpy arrays, named as the spec names them (`hit_rate@10`, `auc`, `rmse`, ...).

Ranking metrics read `ranks`: the 0-based position of the one true item in the model's ordering, or any
value >= K when it is not in the top K (an unknown item is always a miss). With one relevant item per
row, recall@K equals hit_rate@K and ideal DCG is 1, so ndcg@K = 1/log2(rank + 2) inside the top K.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rscale.compiler.spec.evaluate import higher_is_better
from rscale.compiler.spec.tasks import TASKS

EPS = 1e-15
RESAMPLE_CELLS = 1 << 22  # resamples x rows held at once while bootstrapping (32 MiB of float64 weights)


def _at(metric: str) -> tuple[str, int | None]:
    name, _, k = metric.partition("@")
    return name, int(k) if k else None


def hit_rate_at_k(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(np.asarray(ranks) < k)) if len(ranks) else 0.0


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    return hit_rate_at_k(ranks, k)


def mrr_at_k(ranks: np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(np.where(ranks < k, 1.0 / (ranks + 1.0), 0.0))) if len(ranks) else 0.0


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0))) if len(ranks) else 0.0


def ranks_from_top_k(top_k: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Position of each row's target in its top-K list ([n, K] ids), K when absent."""
    top_k, target = np.asarray(top_k), np.asarray(target)
    hits = top_k == target[:, None]
    return np.where(hits.any(axis=1), hits.argmax(axis=1), top_k.shape[1])


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else 0.0


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (what Mann-Whitney U needs)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1], [True]])
    starts = np.flatnonzero(boundaries[:-1])
    ends = np.flatnonzero(boundaries[1:]) + 1
    group_rank = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1..end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def binary_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney U statistic; 0.5 when only one class is present."""
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = _average_ranks(scores)
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Binary AUC for 1-d scores; macro one-vs-rest AUC for [n, C] probabilities."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim == 1:
        return binary_auc(y_true, probabilities)
    y_true = np.asarray(y_true)
    present = [c for c in range(probabilities.shape[1]) if 0 < np.sum(y_true == c) < len(y_true)]
    if not present:
        return 0.5
    return float(np.mean([binary_auc(y_true == c, probabilities[:, c]) for c in present]))


def f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 2) -> float:
    """F1 of the positive class for binary labels; macro F1 over classes otherwise."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = [1] if n_classes <= 2 else list(range(n_classes))
    scores = []
    for c in classes:
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def log_loss(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood; probabilities clipped to [1e-15, 1 - 1e-15]."""
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), EPS, 1 - EPS)
    y_true = np.asarray(y_true)
    if probabilities.ndim == 1:
        y = y_true.astype(np.float64)
        return float(-np.mean(y * np.log(probabilities) + (1 - y) * np.log(1 - probabilities)))
    valid = (y_true >= 0) & (y_true < probabilities.shape[1])
    picked = np.where(valid, probabilities[np.arange(len(y_true)), np.clip(y_true, 0, probabilities.shape[1] - 1)], EPS)
    return float(-np.mean(np.log(picked)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    total = np.sum((y_true - y_true.mean()) ** 2)
    if total == 0:
        return 0.0
    return float(1.0 - np.sum((y_true - y_pred) ** 2) / total)


def max_k(metrics: Sequence[str]) -> int:
    """The largest K among ranking metrics (how many items a baseline must rank)."""
    return max((k for k in (_at(m)[1] for m in metrics) if k), default=10)


def ranking_metrics(metrics: Sequence[str], ranks: np.ndarray) -> dict[str, float]:
    functions = {"hit_rate": hit_rate_at_k, "recall": recall_at_k, "mrr": mrr_at_k, "ndcg": ndcg_at_k}
    out = {}
    for metric in metrics:
        name, k = _at(metric)
        if name in functions and k:
            out[metric] = functions[name](ranks, k)
    return out


def classification_metrics(metrics: Sequence[str], y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """`probabilities`: P(1) as [n] for binary targets, or [n, C] for multiclass (targets are class indices)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true)
    if probabilities.ndim == 1:
        y_true = y_true.astype(np.int64)
        y_pred = (probabilities >= 0.5).astype(np.int64)
        n_classes = 2
    else:
        y_pred = probabilities.argmax(axis=1)
        n_classes = probabilities.shape[1]
    out = {}
    for metric in metrics:
        if metric == "accuracy":
            out[metric] = accuracy(y_true, y_pred)
        elif metric == "auc":
            out[metric] = auc(y_true, probabilities)
        elif metric == "f1":
            out[metric] = f1(y_true, y_pred, n_classes)
        elif metric == "log_loss":
            out[metric] = log_loss(y_true, probabilities)
    return out


def regression_metrics(metrics: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    functions = {"rmse": rmse, "mae": mae, "r2": r2}
    return {m: functions[m](y_true, y_pred) for m in metrics if m in functions}


def logged_name(metric: str, prefix: str = "val_") -> str:
    """How a spec metric is logged by Lightning: `hit_rate@10` -> `val_hit_rate_at_10`."""
    return prefix + metric.replace("@", "_at_")


# --- per-row outputs, and metrics on bootstrap resamples of them ------------------------------------
@dataclass(frozen=True)
class RowOutputs:
    """What a model or baseline said about each test row, enough to recompute any spec metric on a resample.

    kind: the target kind, whose Task (rscale.models.tasks) scores them: "ranking" (values: 0-based rank of
    the true item, >= K a miss), "binary" (values: P(1) [n]), "multiclass" (values: probabilities [n, C];
    target: class index) or "regression" (values: predictions).
    """

    kind: str
    target: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def metrics_of(metrics: Sequence[str], outputs: RowOutputs) -> dict[str, float]:
    """The spec's metrics of one set of per-row outputs, as the outputs' task scores them."""
    return _task(outputs).metrics(metrics, outputs)  # type: ignore[no-any-return]


def _task(outputs: RowOutputs) -> Any:
    """The runtime Task of the outputs' kind (registered in `spec.tasks.TASKS`, imported on first use)."""
    return TASKS.load(outputs.kind)


def resample_weights(rows: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples of `rows` rows as count weights [b, rows] (how often each row was drawn), in chunks.

    A chunk holds at most RESAMPLE_CELLS counts, so a large test split never needs a resamples x rows array.
    """
    rng = np.random.default_rng(seed)
    per_chunk = max(1, min(resamples, RESAMPLE_CELLS // max(rows, 1)))
    for start in range(0, resamples, per_chunk):
        b = min(per_chunk, resamples - start)
        drawn = rng.integers(0, rows, size=(b, rows), dtype=np.int64) + (np.arange(b) * rows)[:, None]
        # float32 holds every count exactly (each is at most `rows`) and halves the memory traffic
        yield np.bincount(drawn.ravel(), minlength=b * rows).reshape(b, rows).astype(np.float32)



def weighted_metric(metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
    """The metric on each resample, [b], from count weights [b, n]: all resamples in a few matrix products."""
    return _task(outputs).weighted_metric(metric, outputs, weights)  # type: ignore[no-any-return]


def weighted_ranking_metric(metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
    """weighted_metric of ranks (0-based rank of the true item, >= K a miss)."""
    name, k = _at(metric)
    total = weights.sum(axis=1)
    ranks = np.asarray(outputs.values, dtype=np.float64)
    inside = ranks < (k or 10)
    per_row = {
        "hit_rate": inside.astype(np.float64),
        "recall": inside.astype(np.float64),
        "mrr": np.where(inside, 1.0 / (ranks + 1.0), 0.0),
        "ndcg": np.where(inside, 1.0 / np.log2(ranks + 2.0), 0.0),
    }[name]
    return np.asarray(weights @ per_row / total)


def weighted_regression_metric(metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
    """weighted_metric of predicted values against true ones."""
    name, _ = _at(metric)
    total = weights.sum(axis=1)
    y, error = np.asarray(outputs.target, float), np.asarray(outputs.values, float) - np.asarray(outputs.target, float)
    if name == "rmse":
        return np.asarray(np.sqrt(weights @ error**2 / total))
    if name == "mae":
        return np.asarray(weights @ np.abs(error) / total)
    spread = weights @ y**2 - (weights @ y) ** 2 / total
    return np.where(spread > 0, 1.0 - (weights @ error**2) / np.where(spread > 0, spread, 1.0), 0.0)


def weighted_classification_metric(metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
    """weighted_metric of class probabilities: P(1) [n] for binary targets, [n, C] for multiclass ones."""
    name, _ = _at(metric)
    total = weights.sum(axis=1)
    target, probabilities = np.asarray(outputs.target), np.asarray(outputs.values, dtype=np.float64)
    binary = probabilities.ndim == 1
    predicted = (probabilities >= 0.5).astype(np.int64) if binary else probabilities.argmax(axis=1)
    if name == "accuracy":
        return np.asarray(weights @ (predicted == target).astype(np.float64) / total)
    if name == "log_loss":
        clipped = np.clip(probabilities, EPS, 1 - EPS)
        if binary:
            y = target.astype(np.float64)
            per_row = -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
        else:
            per_row = -np.log(clipped[np.arange(len(target)), np.clip(target, 0, clipped.shape[1] - 1)])
        return np.asarray(weights @ per_row / total)
    if name == "f1":
        classes = [1] if binary else list(range(probabilities.shape[1]))
        scores = []
        for c in classes:
            tp = weights @ ((predicted == c) & (target == c)).astype(np.float64)
            fp = weights @ ((predicted == c) & (target != c)).astype(np.float64)
            fn = weights @ ((predicted != c) & (target == c)).astype(np.float64)
            scores.append(np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, EPS), 0.0))
        return np.mean(scores, axis=0)
    if name == "auc":
        if binary:
            return _weighted_auc(target.astype(bool), probabilities, weights)
        present = [c for c in range(probabilities.shape[1]) if 0 < np.sum(target == c) < len(target)]
        if not present:
            return np.full(len(weights), 0.5)
        return np.mean([_weighted_auc(target == c, probabilities[:, c], weights) for c in present], axis=0)
    raise ValueError(f"no resampled form of metric {metric!r}")


def _weighted_auc(positive: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC (Mann-Whitney, ties count half) of each resample, [b]: one sort of the scores serves them all."""
    order = np.argsort(scores, kind="mergesort")
    return _sorted_weighted_auc(positive[order], scores[order], weights[:, order])


def _sorted_weighted_auc(positive: np.ndarray, sorted_scores: np.ndarray, w: np.ndarray) -> np.ndarray:
    """_weighted_auc for rows already in ascending score order (weights' columns in that order too)."""
    pos = w * positive
    if len(sorted_scores) > 1 and np.any(sorted_scores[1:] == sorted_scores[:-1]):
        starts = np.flatnonzero(np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1]]))
        w, pos = np.add.reduceat(w, starts, axis=1), np.add.reduceat(pos, starts, axis=1)  # per distinct score
    neg = w - pos
    below = np.cumsum(neg, axis=1)
    below -= 0.5 * neg  # negatives strictly below, and half of those tied
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    wins = np.einsum("ij,ij->i", pos, below)
    return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), 0.5)


def bootstrap_lift(
    metric: str, model: RowOutputs, baseline: RowOutputs, resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """The model's lift over the baseline on `metric` (positive = model better) on each paired resample.

    Paired: model and baseline are scored on the same resampled rows, so the interval reflects the
    difference between them, not each one's own noise.
    """
    if len(model) != len(baseline):
        raise ValueError(f"paired bootstrap needs the same rows: model {len(model)}, baseline {len(baseline)}")
    sign = 1.0 if higher_is_better(metric) else -1.0
    if metric == "auc" and np.ndim(model.values) == np.ndim(baseline.values) == 1:  # binary scores, P(1)
        return sign * _paired_binary_auc(model, baseline, resamples, seed)
    lifts = [
        sign * (weighted_metric(metric, model, weights) - weighted_metric(metric, baseline, weights))
        for weights in resample_weights(len(model), resamples, seed)
    ]
    return np.concatenate(lifts) if lifts else np.zeros(0)


def _paired_binary_auc(model: RowOutputs, baseline: RowOutputs, resamples: int, seed: int) -> np.ndarray:
    """Binary AUC lifts with one column gather per resample chunk instead of two: the weights are iid over
    rows, so the drawn columns are read as the rows in the MODEL's score order, and permuted once into the
    baseline's."""
    model_order = np.argsort(model.values, kind="mergesort")
    baseline_order = np.argsort(baseline.values, kind="mergesort")
    position = np.empty_like(model_order)
    position[model_order] = np.arange(len(model_order))
    to_baseline = position[baseline_order]  # column j of the baseline's order is this column of the model's
    truth = np.asarray(model.target).astype(bool)
    lifts = []
    for weights in resample_weights(len(model), resamples, seed):
        ours = _sorted_weighted_auc(truth[model_order], model.values[model_order], weights)
        theirs = _sorted_weighted_auc(truth[baseline_order], baseline.values[baseline_order], weights[:, to_baseline])
        lifts.append(ours - theirs)
    return np.concatenate(lifts) if lifts else np.zeros(0)
