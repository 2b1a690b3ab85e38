"""The session recommender learns from every position, scores what it trained on, and learns re-views."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
from conftest import plan_for, recs_table

from rscale.models import session_rec
from rscale.models.session_rec import SessionRecModel
from rscale.models.training import train


def _config(encoder: str, n_items: int = 30, max_len: int = 6) -> dict:
    return {
        "model": {"dim": 16, "encoder": encoder, "max_len": max_len, "dropout": 0.0, "top_k": 10, "layers": 1, "heads": 2},
        "shapes": {"n_items": n_items, "max_len": max_len, "target_kind": "ranking"},
        "optim": {"lr": 1e-3, "weight_decay": 0.0},
        "metrics": ["hit_rate@10"],
        "task": "ranking",
    }


BATCH = {
    "sequence": torch.tensor([[2, 3, 4, 0, 0, 0], [5, 5, 6, 7, 8, 9], [10, 0, 0, 0, 0, 0]]),
    "lengths": torch.tensor([3, 6, 1]),
    "target": torch.tensor([11, 12, 13]),
}


@pytest.mark.parametrize("encoder", ["gru", "sasrec", "mean"])
def test_training_loss_is_the_mean_over_every_next_item(encoder):
    torch.manual_seed(0)
    model = SessionRecModel(_config(encoder)).eval()
    # position by position: the prefix s_1..s_i through forward (what serving scores) against s_(i+1)
    losses = []
    for row in range(3):
        items = [*BATCH["sequence"][row, : BATCH["lengths"][row]].tolist(), int(BATCH["target"][row])]
        for i in range(1, len(items)):
            prefix = {"sequence": torch.tensor([items[:i]]), "lengths": torch.tensor([i])}
            losses.append(F.cross_entropy(model(prefix), torch.tensor([items[i]])))
    assert model.training_loss(BATCH).item() == pytest.approx(torch.stack(losses).mean().item(), rel=1e-5)


def test_sampled_softmax_for_large_catalogues_trains(monkeypatch):
    monkeypatch.setattr(session_rec, "FULL_SOFTMAX_CELLS", 1)
    monkeypatch.setattr(session_rec, "SAMPLED_NEGATIVES", 8)
    torch.manual_seed(0)
    model = SessionRecModel(_config("gru"))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = model.training_loss(BATCH)
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < first / 2


def _revisit_table(rows: int, seed: int, items: int = 300) -> pa.Table:
    """Random items, and the next view returns to the item seen two views ago: only memory of the session helps."""
    rng = np.random.default_rng(seed)
    histories = [[f"i{v}" for v in rng.integers(0, items, int(rng.integers(2, 7)))] for _ in range(rows)]
    return pa.table({
        "session_id": [f"s{seed}_{i}" for i in range(rows)],
        "items": pa.array(histories, pa.list_(pa.string())),
        "next_item": [h[-2] for h in histories],
        "session_end": pa.array(np.arange(rows), pa.int64()),
    })


def test_repeat_scores_learn_re_views(tmp_path):
    plan = plan_for("recs", ["train.max_epochs=4", "model.dim=16", "train.batch_size=64", "train.lr=0.01", "train.early_stopping=null"])
    result = train(plan, _revisit_table(1500, 1), _revisit_table(300, 2), tmp_path, progress=False)
    # 300 items: popularity or an item-to-item table gets ~3%; the repeat scores find the item two views back
    assert result.history[-1]["val_hit_rate_at_10"] > 0.9


def test_transition_memory_counts_whole_sessions_and_leaves_out_its_own_transition():
    model = SessionRecModel(_config("gru"))
    sequence = torch.tensor([[2, 3, 0], [2, 3, 4], [2, 5, 0]])
    model.count_transitions(sequence, torch.tensor([2, 3, 2]), torch.tensor([4, 2, 2]))
    # 2 -> 3 twice, 2 -> 5 once; 3 -> 4 twice; 4 -> 2 once; 5 -> 2 once
    assert model.successors[2, :2].tolist() == [3, 5] and model.successor_counts[2, :2].tolist() == [2.0, 1.0]
    assert model.successors[3, 0].item() == 4 and model.successor_counts[3, 0].item() == 2.0
    states = torch.zeros(1, 1, 16)  # the state's gate starts at zero: the scores are log(1 + count)
    items, scores = model._transitions(torch.tensor([[2]]), states)
    assert dict(zip(items[0, 0, :2].tolist(), scores[0, 0, :2].tolist(), strict=True)) == pytest.approx({3: np.log(3), 5: np.log(2)})
    # training on the session whose own transition is 2 -> 3: the counts it reads are the other sessions'
    items, scores = model._transitions(torch.tensor([[2]]), states, labels=torch.tensor([[3]]))
    assert dict(zip(items[0, 0, :2].tolist(), scores[0, 0, :2].tolist(), strict=True)) == pytest.approx({3: np.log(2), 5: np.log(2)})


def test_neighbourhood_memory_counts_sessions_shared_and_leaves_out_the_own_session():
    model = SessionRecModel(_config("gru"))
    sequence = torch.tensor([[2, 3, 3], [2, 3, 4], [5, 2, 0]])
    model.count_neighbours(sequence, torch.tensor([3, 3, 2]), torch.tensor([6, 2, 7]))
    # sessions as sets {2,3,6}, {2,3,4}, {2,5,7}: 2 shares 2 sessions with 3, one with each of 4, 5, 6, 7
    shared = dict(zip(model.neighbours[2].tolist(), model.neighbour_counts[2].tolist(), strict=True))
    assert shared[3] == 2.0 and {shared[i] for i in (4, 5, 6, 7)} == {1.0} and model.neighbours[3, 0].item() == 2
    states = torch.zeros(1, 2, 16)  # gates start at zero, recency weights too: set the last view's weight to 1
    with torch.no_grad():
        model.neighbour_recency[0] = 1.0
    items, scores = model._neighbourhood(torch.tensor([[5, 2]]), torch.tensor([2]), states, torch.tensor([[1]]))
    read = {i: v for i, v in zip(items[0, 0].tolist(), scores[0, 0].tolist(), strict=True) if v}
    assert read == pytest.approx({3: np.log(3), 4: np.log(2), 5: np.log(2), 6: np.log(2), 7: np.log(2)})
    # training on session 3 ({2, 5, 7}): its own co-occurrences are taken back, 2 -> 5 and 2 -> 7 read 0
    own = torch.tensor([[5, 2, 7]])
    items, scores = model._neighbourhood(torch.tensor([[5, 2]]), torch.tensor([2]), states, torch.tensor([[1]]), own)
    read = {i: v for i, v in zip(items[0, 0].tolist(), scores[0, 0].tolist(), strict=True) if v}
    assert read == pytest.approx({3: np.log(3), 4: np.log(2), 6: np.log(2)})


def test_training_on_sessions_that_share_no_items_reads_nothing_from_the_neighbourhood():
    """Each BATCH session's items are its own: with the own session left out, the memory counted from BATCH
    adds nothing in training, so the loss is that of an empty memory (serving would read the counts)."""
    torch.manual_seed(0)
    model = SessionRecModel(_config("gru")).eval()
    with torch.no_grad():
        model.neighbour_recency.fill_(1.0)
    empty = model.training_loss(BATCH).item()
    model.count_neighbours(BATCH["sequence"], BATCH["lengths"], BATCH["target"])
    assert model.neighbour_counts.sum() > 0
    assert model.training_loss(BATCH).item() == pytest.approx(empty, rel=1e-6)
    with torch.no_grad():
        served = model(BATCH)
        model.neighbour_counts.zero_()
        assert not torch.allclose(served, model(BATCH))  # serving reads the counts


def test_the_transition_memory_is_saved_with_the_package(tmp_path):
    from rscale.models.package import ModelPackage

    plan = plan_for("recs", ["train.max_epochs=1", "model.dim=8", "train.batch_size=128", "train.early_stopping=null"])
    result = train(plan, recs_table(400, seed=1), recs_table(100, seed=2), tmp_path, progress=False)
    module = ModelPackage.load(result.package_dir).module
    assert module.successor_counts.sum().item() > 0  # counted from training, then read back by serving
    assert module.neighbour_counts.sum().item() > 0
