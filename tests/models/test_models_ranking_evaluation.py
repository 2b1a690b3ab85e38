"""Next-item ranking is evaluated on every position of the test sessions, with a bootstrap over sessions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rscale.models import metrics as M
from rscale.models.evaluation import evaluation_rows, paired_lifts
from rscale.models.fitted import SequenceVocabulary, TargetEncoding
from rscale.models.metrics import RowOutputs


class _Preprocessor:
    sequence = SequenceVocabulary(name="items", vocab="items", max_len=20)
    target = TargetEncoding(name="next_item", kind="ranking", vocab="items")


def test_every_next_item_position_becomes_a_row_with_its_prefix():
    table = pa.table({
        "session_id": ["a", "b", "c", "d"],
        "items": pa.array([["x", "y", "z"], [], ["q", None, "r"], None], pa.list_(pa.string())),
        "next_item": ["w", "v", None, "u"],
    })
    rows, sessions = evaluation_rows(_Preprocessor(), table)
    assert [(r["session_id"], r["items"], r["next_item"]) for r in rows.to_pylist()] == [
        ("a", ["x"], "y"), ("a", ["x", "y"], "z"), ("a", ["x", "y", "z"], "w"),
        ("b", [], "v"),  # an empty history still asks for its next item once
        ("c", ["q"], "r"), ("c", ["q", "r"], None),  # nulls dropped, as the preprocessor drops them
        ("d", [], "u"),
    ]
    assert sessions.tolist() == [0, 0, 0, 1, 2, 2, 3]
    assert rows.schema == table.schema


def test_tables_without_a_session_are_scored_row_by_row():
    class Tabular:
        sequence = None
        target = TargetEncoding(name="y", kind="binary")

    table = pa.table({"x": [1.0, 2.0], "y": [0, 1]})
    rows, sessions = evaluation_rows(Tabular(), table)
    assert rows is table and sessions is None


def _ranks(hits: np.ndarray) -> RowOutputs:
    return RowOutputs("ranking", np.zeros(len(hits), np.int64), np.where(hits, 0, 50).astype(np.float64))


def test_one_position_per_session_is_the_plain_paired_bootstrap():
    rng = np.random.default_rng(0)
    model, baseline = _ranks(rng.random(300) < 0.6), _ranks(rng.random(300) < 0.5)
    clustered = paired_lifts("hit_rate@10", model, baseline, 400, 3, np.arange(300))
    assert np.array_equal(clustered, M.bootstrap_lift("hit_rate@10", model, baseline, 400, seed=3))


def test_correlated_positions_widen_the_interval_when_sessions_are_resampled():
    # 200 sessions of 8 positions; the model wins or loses a whole session at once
    rng = np.random.default_rng(1)
    wins = np.repeat(rng.random(200) < 0.55, 8)
    sessions = np.repeat(np.arange(200), 8)
    model, baseline = _ranks(wins), _ranks(~wins)
    by_session = paired_lifts("hit_rate@10", model, baseline, 500, 0, sessions)
    by_position = paired_lifts("hit_rate@10", model, baseline, 500, 0, None)
    width = np.subtract(*np.quantile(by_session, [0.975, 0.025]))
    naive = np.subtract(*np.quantile(by_position, [0.975, 0.025]))
    assert width > 2 * naive  # ~sqrt(8) wider: positions of one session are not independent evidence
    assert np.array_equal(by_session, paired_lifts("hit_rate@10", model, baseline, 500, 0, sessions))  # seeded
