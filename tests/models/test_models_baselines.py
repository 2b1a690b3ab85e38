"""Baselines on data where the answer is known by hand: direction and repeats, session neighbours, registry."""

import pyarrow as pa
import pytest
from conftest import plan_for, recs_table

from rscale.compiler.spec.evaluate import BASELINES, SessionKNNBaseline, baseline_tasks, default_baselines
from rscale.models.baselines import SessionKNN, fit_baseline


def _items(baseline, batch, k=4):  # type: ignore[no-untyped-def]
    names = ["<pad>", "<oov>", *baseline.preprocessor.vocabularies[baseline.preprocessor.target.vocab]]
    return [[names[i] for i in row] for row in baseline.top_k(batch, k)]


def _sessions(histories, targets, times=None):  # type: ignore[no-untyped-def]
    return pa.table({
        "items": pa.array(histories, pa.list_(pa.string())),
        "next_item": targets,
        "session_id": [str(i) for i in range(len(targets))],
        "session_end": times or list(range(len(targets))),
    })


def test_item_to_item_follows_direction_and_keeps_repeats(recs_plan):
    # a is followed by a (a repeat) twice and by b once; b is followed by c; c never precedes a
    train = _sessions([["a", "a"], ["a"], ["a", "b"], ["c"]], ["a", "b", "c", "x"])
    baseline = fit_baseline("item_to_item", train, recs_plan)
    batch = baseline.preprocessor.transform(_sessions([["a"], ["b"], ["c"]], ["a", "c", "a"]))
    top = _items(baseline, batch)
    assert top[0][:2] == ["a", "b"]  # a -> a 2x (repeats kept) and a -> b 2x; co-occurrence breaks the tie
    assert top[1][0] == "c"  # b -> c, not c -> b
    assert top[2][0] == "x"  # c -> x; a co-occurs with c only through a -> b -> c, so it ranks later
    scores = baseline.score(_sessions([["a"], ["b"]], ["a", "c"]))
    assert scores["hit_rate@10"] == 1.0 and scores["mrr@10"] == 1.0  # a is 1st after a, c is 1st after b


def test_session_knn_votes_by_whole_session_similarity(recs_plan):
    # two sessions share a and b with the test session; only the one sharing both recent items predicts well
    train = _sessions([["a", "b"], ["z", "b"], ["q", "r"]], ["c", "d", "e"])
    baseline = fit_baseline("session_knn", train, recs_plan)
    batch = baseline.preprocessor.transform(_sessions([["a", "b"], ["never-seen"]], ["c", "e"]))
    top = _items(baseline, batch, 6)
    assert set(top[0][:3]) == {"a", "b", "c"}  # the most similar session votes for each of its items
    assert top[0].index("c") < top[0].index("d")  # the closer neighbour's next item ranks above the other's
    assert len(set(top[1])) == 6 and "<pad>" not in top[1]  # no neighbour: popular items fill the list


def test_session_knn_samples_the_most_recent_sessions(recs_plan):
    # with sample=1, only the newest session sharing an item (by the data's time column) is a neighbour
    train = _sessions([["a"], ["a"]], ["old", "new"], times=[1, 2])
    knn = SessionKNN(SessionKNNBaseline(sample=1)).fit(train, recs_plan)
    batch = knn.preprocessor.transform(_sessions([["a"]], ["new"]))
    top = _items(knn, batch, 3)
    assert top[0].index("new") < top[0].index("old")
    everyone = SessionKNN(SessionKNNBaseline(sample=2)).fit(train, recs_plan)
    assert set(_items(everyone, batch, 3)[0]) == {"a", "old", "new"}


def test_session_knn_scores_a_ring_walk_like_item_to_item(recs_plan):
    train, test = recs_table(1500, seed=1), recs_table(400, seed=2)
    knn = fit_baseline("session_knn", train, recs_plan).score(test)
    popularity = fit_baseline("popularity", train, recs_plan).score(test)
    assert knn["hit_rate@10"] > popularity["hit_rate@10"] + 0.3


def test_registry_declares_tasks_and_defaults():
    assert default_baselines("ranking") == ["item_to_item", "popularity", "session_knn"]
    assert default_baselines("classification") == ["gbdt", "logistic", "majority"]
    assert default_baselines("regression") == ["gbdt", "linear", "mean"]
    assert baseline_tasks("gbdt") == ("classification", "regression")
    for name in BASELINES.names():
        assert BASELINES.entry(name).config.follows, f"{name} says whose method it follows"  # type: ignore[attr-defined]


def test_spec_lists_baselines_and_checks_their_task():
    plan = plan_for("conversion", ["evaluate.baseline=[majority,logistic]"])
    assert plan.evaluate.baseline_names(plan.task) == ["majority", "logistic"]
    plan = plan_for("conversion", [])  # the spec leaves evaluate.baseline out: the task's fair defaults
    assert plan.evaluate.baseline is None
    assert plan.evaluate.baseline_names(plan.task) == ["gbdt", "logistic", "majority"]
    from rscale.compiler.errors import SpecError

    with pytest.raises(SpecError) as caught:
        plan_for("conversion", ["evaluate.baseline=[logistic,session_knn]"])
    assert "baseline `session_knn` is for ranking tasks" in caught.value.render()
    with pytest.raises(SpecError) as caught:
        plan_for("conversion", ["evaluate.baseline=logistik"])
    assert "logistic" in caught.value.render()  # did you mean
