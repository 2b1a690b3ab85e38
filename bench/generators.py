"""Session generators of other structure than the demo's, to check that the recommender and its gate hold
on data they were not built for. Each returns an `events` table with the demo's columns (views only), so
`specs/recs.yaml` runs on it unchanged.

    markov_themes   each session walks a sparse, directed first-order transition table inside one theme (a
                    set of ~50 items; 3 likely successors per item), with popularity noise: 20% of views are
                    a detour to any popular item, after which the walk goes on from where it was (a banner
                    clicked, then back to the list). A transition count from the last item is the best
                    predictor except right after a detour, where only the earlier items tell where the walk is.
    latent_drift    items and sessions live in a 16-dimensional taste space; a session's taste drifts as a
                    random walk, each view is drawn by softmax(taste . item / temperature) times popularity,
                    and 10% of views return to an item seen earlier in the session. No item-to-item table
                    exists at all: neighbours are implied by the taste space (music or news-like browsing).
                    The temperature makes taste and popularity weigh about equally in a choice (the spread
                    of taste logits, std ~1.0, is about that of log popularity over the catalogue, ~0.9).

Neither generator was tuned against the model: the constants are round values chosen for plausible
session lengths (mean 6-8 views), catalogue sizes (2-5k items) and popularity skew (Zipf ~1).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

START = datetime(2026, 9, 1)
DAYS = 60


def markov_themes(sessions: int = 40_000, seed: int = 1, items: int = 3_000, themes: int = 60) -> pa.Table:
    rng = np.random.default_rng(seed)
    popularity = _zipf(rng, items, 1.0)
    theme_of_item = rng.integers(0, themes, items)
    members = [np.flatnonzero(theme_of_item == t) for t in range(themes)]
    # three successors per item inside its theme, with decreasing weight
    successors = np.stack(
        [rng.choice(members[theme_of_item[i]], 3, p=_norm(popularity[members[theme_of_item[i]]] ** 0.5)) for i in range(items)]
    )
    slot_weights = np.array([0.6, 0.3, 0.1])
    lengths = np.minimum(2 + rng.poisson(5, sessions), 40)
    theme = rng.choice(themes, sessions, p=_norm(np.array([popularity[m].sum() for m in members])))
    views: list[np.ndarray] = []
    for s in range(sessions):
        pool = members[theme[s]]
        current = rng.choice(pool, p=_norm(popularity[pool]))
        row = [current]
        for _ in range(lengths[s] - 1):
            if rng.random() < 0.8:
                current = successors[current, rng.choice(3, p=slot_weights)]
                row.append(current)
            else:
                row.append(rng.choice(items, p=popularity))  # a detour: the walk stays where it was
        views.append(np.array(row))
    return _events(rng, views, items)


def latent_drift(sessions: int = 30_000, seed: int = 2, items: int = 2_000, dim: int = 16) -> pa.Table:
    rng = np.random.default_rng(seed)
    popularity = _zipf(rng, items, 0.9)
    vectors = rng.normal(0, 1, (items, dim)) / np.sqrt(dim)
    log_pop = np.log(popularity)
    lengths = np.minimum(2 + rng.poisson(5, sessions), 40)
    views: list[np.ndarray] = []
    temperature = 0.2
    for s in range(sessions):
        taste = rng.normal(0, 1, dim) / np.sqrt(dim)
        row: list[int] = []
        for _ in range(lengths[s]):
            if row and rng.random() < 0.1:
                row.append(row[rng.integers(max(0, len(row) - 5), len(row))])  # back to a recent item
                continue
            logits = vectors @ taste / temperature + log_pop
            choice = int(rng.choice(items, p=_softmax(logits)))
            row.append(choice)
            taste = 0.8 * taste + 0.2 * vectors[choice] * np.sqrt(dim) / 2 + rng.normal(0, 0.15, dim) / np.sqrt(dim)
        views.append(np.array(row))
    return _events(rng, views, items)


GENERATORS = {"markov_themes": markov_themes, "latent_drift": latent_drift}


def _zipf(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    return _norm((rng.permutation(n) + 1.0) ** -exponent)


def _norm(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _events(rng: np.random.Generator, views: list[np.ndarray], items: int) -> pa.Table:
    """Views as an events table with the demo's columns: one row a view, seconds apart within a session."""
    lengths = np.array([len(v) for v in views])
    session = np.repeat(np.arange(len(views)), lengths)
    item = np.concatenate(views)
    start = rng.integers(0, DAYS * 86_400, len(views))
    gaps = np.floor(1 + rng.exponential(35, len(item))).astype(np.int64)
    first = np.r_[True, session[1:] != session[:-1]]
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first], lengths)
    seconds = start[session] + elapsed
    item_ids = np.array([f"I{i:05d}" for i in range(items)], dtype=object)
    return pa.table(
        {
            "session_id": pa.array(np.char.add("S", np.char.zfill(session.astype(str), 7)), pa.string()),
            "user_id": pa.array(np.char.add("U", np.char.zfill((session % 9_973).astype(str), 6)), pa.string()),
            "item_id": pa.array(item_ids[item], pa.string()),
            "category": pa.array(np.full(len(item), "C00"), pa.string()),
            "event_type": pa.array(np.full(len(item), "view"), pa.string()),
            "event_time": pa.array(np.datetime64(START, "s") + seconds.astype("timedelta64[s]"), pa.timestamp("us")),
            "device": pa.array(np.full(len(item), "desktop"), pa.string()),
            "price": pa.array(np.full(len(item), 10.0), pa.float64()),
        }
    )
