"""Where a fit's batches come from (rscale.models.training.DeviceBatches) never changes what it trains on: the
device-resident and the prefetched placements yield TensorBatches' batches in BatchOrder's order, a prefetch
thread's error reaches the training thread and the thread is gone after the epoch, and a fit with either
placement forced ends with the weights of the default (host) path. There is no GPU here, so both GPU
placements run on the CPU device: the same code, with pinning and the side CUDA stream skipped."""

from __future__ import annotations

import threading
from contextlib import closing

import pytest
import torch
from conftest import plan_for, recs_table

from rscale.errors import RscaleError
from rscale.models.package import ModelPackage
from rscale.models.training import (
    BATCH_PLACEMENT_ENV,
    BatchOrder,
    DeviceBatches,
    TensorBatches,
    batch_placement,
    tensor_bytes,
    train,
)

CPU = torch.device("cpu")


def _tensors(rows: int = 103, width: int = 12) -> dict[str, torch.Tensor]:
    """Encoded-tensor shapes as session_rec's: right-padded sequences with their lengths, a target, a feature."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, width + 1, (rows,), generator=generator)
    sequence = torch.randint(1, 50, (rows, width), generator=generator)
    sequence[torch.arange(width) >= lengths[:, None]] = 0
    return {"sequence": sequence, "lengths": lengths, "target": torch.randint(0, 50, (rows,), generator=generator),
            "dense": torch.randn(rows, 3, generator=generator)}


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rscale-batch-prefetch"]


@pytest.mark.parametrize("placement", ["host", "device", "prefetch"])
def test_every_placement_yields_tensorbatches_batches_in_batchorder_order(placement):
    tensors = _tensors()
    expected_batches, expected_order = TensorBatches(tensors), BatchOrder(103, 16, True, seed=7)
    batches = DeviceBatches(tensors, BatchOrder(103, 16, True, seed=7), CPU, placement)
    assert len(batches) == len(expected_order) == 7
    for epoch in range(2):  # a new shuffle each epoch, the same one BatchOrder makes
        expected_order.set_epoch(epoch)
        expected = [(expected_batches[index], len(index)) for index in expected_order]
        with closing(batches.epoch(epoch)) as got:
            seen = list(got)
        assert [rows for _, rows in seen] == [rows for _, rows in expected]
        for (batch, _), (want, _) in zip(seen, expected, strict=True):
            assert batch.keys() == want.keys()
            for name in want:
                assert batch[name].shape == want[name].shape, name  # sequences trimmed to the batch's longest
                assert torch.equal(batch[name], want[name]), name
        assert _prefetch_threads() == []


def test_a_prefetch_threads_error_is_raised_on_the_training_thread_and_the_thread_is_joined():
    tensors = _tensors(rows=40)
    # the order asks for rows 40..79 of 40-row tensors: gathering the first batch past row 39 fails in the thread
    batches = DeviceBatches(tensors, BatchOrder(80, 16, False), CPU, "prefetch")
    seen = 0
    with pytest.raises((IndexError, RuntimeError), match="out of range|out of bounds"):
        with closing(batches.epoch(0)) as epoch_batches:
            for _ in epoch_batches:
                seen += 1
    assert seen == 2  # rows 0..31 came through before the failing batch
    assert _prefetch_threads() == []


def test_a_prefetch_thread_stops_when_the_epoch_is_left_early():
    batches = DeviceBatches(_tensors(rows=400), BatchOrder(400, 8, True), CPU, "prefetch")
    with closing(batches.epoch(0)) as epoch_batches:
        for step, _ in enumerate(epoch_batches):
            if step == 1:  # the thread is blocked on a full queue now: closing must still stop and join it
                break
    assert _prefetch_threads() == []


def test_placement_is_host_on_the_cpu_and_can_be_forced(monkeypatch):
    tensors = _tensors()
    assert tensor_bytes(tensors, None) == sum(t.numel() * t.element_size() for t in tensors.values())
    assert batch_placement(CPU, 10)[0] == "host"
    monkeypatch.setenv(BATCH_PLACEMENT_ENV, "prefetch")
    placement, reason = batch_placement(CPU, 10)
    assert placement == "prefetch" and BATCH_PLACEMENT_ENV in reason
    monkeypatch.setenv(BATCH_PLACEMENT_ENV, "gpu")
    with pytest.raises(RscaleError, match="expected auto, device or prefetch"):
        batch_placement(CPU, 10)


def _fit(tmp_path, monkeypatch, placement: str | None):  # type: ignore[no-untyped-def]
    if placement is None:
        monkeypatch.delenv(BATCH_PLACEMENT_ENV, raising=False)
    else:
        monkeypatch.setenv(BATCH_PLACEMENT_ENV, placement)
    plan = plan_for("recs", ["train.max_epochs=2", "model.dim=16", "train.batch_size=64", "train.early_stopping=null"])
    result = train(plan, recs_table(500, seed=1), recs_table(200, seed=2), tmp_path / (placement or "default"),
                   progress=False)
    return result, ModelPackage.load(result.package_dir).module.state_dict()


def test_a_fit_with_either_placement_forced_trains_the_default_paths_weights(tmp_path, monkeypatch):
    default, weights = _fit(tmp_path, monkeypatch, None)
    assert default.batch_placement == "host"
    for placement in ("prefetch", "device"):
        result, forced = _fit(tmp_path, monkeypatch, placement)
        assert result.batch_placement == placement
        assert forced.keys() == weights.keys()
        for name, value in weights.items():
            assert torch.equal(forced[name], value), (placement, name)
        assert result.history == [{**h, "train_seconds": r["train_seconds"]}
                                  for h, r in zip(default.history, result.history, strict=True)]
    assert _prefetch_threads() == []
