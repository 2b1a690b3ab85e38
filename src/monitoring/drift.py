"""Drift statistics in numpy: the population stability index (PSI) and the out-of-vocabulary share.

PSI = sum over bins of (served% - train%) * ln(served% / train%): 0 for identical distributions, about
0.1 for a small shift and 0.2 or more for a shift worth acting on (the usual rule of thumb in credit
scoring, where PSI comes from). Numeric inputs are cut into quantile bins of the training data, plus one
bin for missing values; categorical inputs use their most frequent training categories plus "other".
numpy is enough for these few lines; a drift library (evidently, alibi-detect) would bring a large
dependency tree into the CLI for the same two formulas.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

EPSILON = 1e-4  # floor of a bin's share, so an empty bin gives a large but finite PSI
TOP_CATEGORIES = 20
OTHER = "<other>"
MISSING = "<missing>"


def psi(train_counts: Sequence[float], served_counts: Sequence[float]) -> float:
    """PSI between two histograms over the same bins (counts, not shares)."""
    expected = np.asarray(train_counts, dtype=float)
    actual = np.asarray(served_counts, dtype=float)
    if expected.sum() == 0 or actual.sum() == 0:
        return float("nan")
    e = np.clip(expected / expected.sum(), EPSILON, None)
    a = np.clip(actual / actual.sum(), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(train: Iterable[Any], served: Iterable[Any], bins: int = 10) -> float:
    """PSI of a numeric input over quantile bins of its training values (missing values get their own bin)."""
    t = _floats(train)
    s = _floats(served)
    finite = t[np.isfinite(t)]
    if finite.size == 0:
        edges = np.array([], dtype=float)
    else:
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    return psi(_histogram(t, edges), _histogram(s, edges))


def categorical_psi(train: Iterable[Any], served: Iterable[Any], top: int = TOP_CATEGORIES) -> float:
    """PSI of a categorical input over its `top` most frequent training categories (missing is one) and "other".

    Values training never saw fall in "other": with a long-tailed catalogue a small training split misses
    many real values, so new values are judged by the out-of-vocabulary share instead (`oov_share`), whose
    threshold is a rise over training's own share.
    """
    train_counts = Counter(_category(v) for v in train)
    keep = [c for c, _ in train_counts.most_common(top)]
    served_counts = Counter(_category(v) for v in served)

    def histogram(counts: Counter[str]) -> list[int]:
        kept = [counts.get(c, 0) for c in keep]
        return [*kept, sum(counts.values()) - sum(kept)]

    return psi(histogram(train_counts), histogram(served_counts))


def oov_share(values: Iterable[Any], vocabulary: set[str]) -> float:
    """Share of the non-missing values that are not in `vocabulary` (what the model sees as <oov>)."""
    seen = [str(v) for v in values if v is not None]
    if not seen:
        return float("nan")
    return sum(1 for v in seen if v not in vocabulary) / len(seen)


def tokens(sequences: Iterable[Any]) -> list[Any]:
    """The elements of every sequence, flattened (a missing sequence adds none)."""
    return [token for sequence in sequences if sequence is not None for token in sequence]


def _category(value: Any) -> str:
    return MISSING if value is None else str(value)


def _floats(values: Iterable[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _histogram(values: np.ndarray, edges: np.ndarray) -> list[int]:
    missing = ~np.isfinite(values)
    present = values[~missing]
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    return [*counts.tolist(), int(missing.sum())]
