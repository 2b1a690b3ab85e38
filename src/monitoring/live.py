"""The live metric: the deployed model scored on predictions whose outcome has landed.

Ranking responses list items best first (`outputs.items`): hit_rate@K is the share of predictions whose
outcome is among the first K, mrr@K the mean of 1/rank. Binary responses carry `outputs.probability`:
auc (ties share their rank) and accuracy of `outputs.label`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

LIVE_METRIC = re.compile(r"^(hit_rate|mrr)@([1-9][0-9]*)$|^(auc|accuracy)$")


def live_metric_name(metrics: list[str]) -> str | None:
    """The first of the spec's metrics that can be computed from responses and outcomes."""
    return next((m for m in metrics if LIVE_METRIC.match(m)), None)


def score(metric: str, outputs: list[str], outcomes: list[Any]) -> float:
    """`metric` of logged responses (JSON text) against their outcomes; NaN when it is undefined (no rows,
    or AUC with one class only)."""
    if not outputs:
        return float("nan")
    match = LIVE_METRIC.match(metric)
    if match is None:
        raise ValueError(f"`{metric}` cannot be computed live; live metrics: hit_rate@K, mrr@K, auc, accuracy")
    responses = [json.loads(text) if isinstance(text, str) else text for text in outputs]
    if match.group(1):
        k = int(match.group(2))
        ranks = [_rank(response, outcome, k) for response, outcome in zip(responses, outcomes, strict=True)]
        if match.group(1) == "hit_rate":
            return float(np.mean([r is not None for r in ranks]))
        return float(np.mean([1.0 / r if r else 0.0 for r in ranks]))
    truth = np.array([float(o) for o in outcomes]) >= 0.5
    if match.group(3) == "accuracy":
        labels = np.array([float(_field(r, "label")) for r in responses]) >= 0.5
        return float(np.mean(labels == truth))
    return auc(np.array([float(_field(r, "probability")) for r in responses]), truth)


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties given their mean rank."""
    positives = int(truth.sum())
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=float)
    sorted_scores = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], scores.size]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _rank(response: Any, outcome: Any, k: int) -> int | None:
    items = _field(response, "items") or []
    target = str(outcome)
    for position, item in enumerate(items[:k], start=1):
        if str(item) == target:
            return position
    return None


def _field(response: Any, key: str) -> Any:
    if isinstance(response, dict):
        return response.get(key)
    return None
