"""Training loop: samples/s of rscale's training (its Fabric loop) against a hand-written PyTorch loop.

Both sides train the same module class (built from the same model_config), on the same tensors, with the
same batch size, shuffled index batches, AdamW settings and epochs, on one intra-op thread, and optimise
the same loss: the model's own `training_loss(batch)` (the session model learns every next item of a
session, not only the last). rscale's figure is what `rscale.models.training.train` reports per epoch
(first batch to last batch of the training epoch); the hand-written loop is timed over the same span. Validation runs on both sides but outside that span; the
whole call (preprocessing, validation, checkpoints, package) is reported as well, without a goal.
Goal (DESIGN.md): >= 0.95 of the hand-written loop's samples/s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench.report import Report, paired_chart

GOAL = 0.95
REPO = Path(__file__).resolve().parents[1]


def conversion_rows(rows: int, seed: int) -> pa.Table:
    """Rows shaped like specs/conversion.yaml's query result, with a learnable purchase signal."""
    rng = np.random.default_rng(seed)
    n_views = rng.poisson(5, rows).astype(float)
    n_carts = rng.poisson(1, rows).astype(float)
    device = rng.choice(np.array(["mobile", "desktop", "tablet"], dtype=object), rows)
    logit = -2.0 + 1.5 * n_carts + (device == "desktop") * 1.0
    return pa.table({
        "session_id": pa.array(np.arange(rows).astype(str)),
        "n_views": n_views,
        "n_carts": n_carts,
        "n_categories": rng.integers(1, 5, rows).astype(float),
        "duration_s": rng.exponential(100, rows),
        "avg_price": rng.gamma(2.0, 20.0, rows),
        "device": pa.array(device, pa.string()),
        "purchased": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64),
        "session_start": pa.array(np.arange(rows), pa.int64()),
    })


def recs_rows(rows: int, seed: int, items: int = 500) -> pa.Table:
    """Sessions walking a ring of items (next = +1, sometimes +2), shaped like specs/recs.yaml's query result."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 16, rows)
    starts = rng.integers(0, items, rows)
    steps = np.where(rng.random((rows, 16)) < 0.8, 1, 2)
    walks = (starts[:, None] + np.cumsum(steps, axis=1) - steps[:, :1]) % items
    names = np.array([f"I{i:04d}" for i in range(items)], dtype=object)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.concatenate([walks[i, : lengths[i]] for i in range(rows)])
    sequences = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(names[flat], pa.string()))
    return pa.table({
        "session_id": pa.array(np.arange(rows).astype(str)),
        "items": sequences,
        "next_item": pa.array(names[walks[np.arange(rows), lengths]], pa.string()),
        "session_end": pa.array(np.arange(rows), pa.int64()),
    })


def plan_for(spec: str, overrides: list[str]) -> Any:
    from rscale.compiler.compilation import compile_spec

    return compile_spec(REPO / "specs" / f"{spec}.yaml", overrides, offline=True).plans[0]


def rscale_fit(plan: Any, train: pa.Table, validation: pa.Table, workdir: Path) -> tuple[list[float], float]:
    """Per-epoch samples/s as rscale reports them, and the whole call's wall seconds."""
    import shutil

    from rscale.models.training import train as fit

    shutil.rmtree(workdir, ignore_errors=True)  # a re-run in the same workdir would resume, not train
    started = time.perf_counter()
    result = fit(plan, train, validation, workdir, progress=False)
    wall = time.perf_counter() - started
    rates = [train.num_rows / h["train_seconds"] for h in result.history if h.get("train_seconds")]
    return rates, wall


def hand_fit(plan: Any, train: pa.Table, validation: pa.Table, workdir: Path) -> tuple[list[float], float]:
    """The loop a person writes: encode once, shuffle indices, slice batches, the model's loss, backward, step."""
    import torch

    from rscale.models.package import build_module, model_config_for
    from rscale.models.preprocess import Preprocessor
    from rscale.models.task_module import task_loss

    started = time.perf_counter()
    torch.manual_seed(plan.train.seed)
    preprocessor = Preprocessor.fit(plan, train)
    config = model_config_for(plan, preprocessor)
    model = build_module(config)
    tensors = preprocessor.transform(train)
    held_out = preprocessor.transform(validation)
    optim = config["optim"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim["lr"], weight_decay=optim["weight_decay"])
    batch_size, rows = plan.train.batch_size, train.num_rows

    def batch_at(source: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = {name: tensor[index] for name, tensor in source.items()}
        if "lengths" in batch:
            batch["sequence"] = batch["sequence"][:, : max(1, int(batch["lengths"].max()))]
        return batch

    rates = []
    for epoch in range(plan.train.max_epochs):
        model.train()
        order = torch.randperm(rows, generator=torch.Generator().manual_seed(plan.train.seed + epoch))
        epoch_start = time.perf_counter()
        for index in order.split(batch_size):
            batch = batch_at(tensors, index)
            # the model's own training loss (the session model learns every next item of a session, not
            # only the last), as rscale optimises it: both sides do the same work per batch
            loss = model.training_loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rates.append(rows / (time.perf_counter() - epoch_start))
        model.eval()
        with torch.no_grad():
            for index in torch.arange(validation.num_rows).split(max(batch_size, 1024)):
                batch = batch_at(held_out, index)
                # the validation loss rscale's loop computes (its model's task's loss); outside the timed span
                task_loss(model, model(batch), batch["target"])
    workdir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), workdir / "hand.pt")
    return rates, time.perf_counter() - started


def cases(quick: bool) -> dict[str, dict[str, Any]]:
    if quick:
        return {
            "tabular (conversion MLP)": {"spec": "conversion", "rows": 12_000, "epochs": 2, "extra": []},
            "session_rec (recs GRU)": {"spec": "recs", "rows": 3_000, "epochs": 2, "extra": ["model.dim=32"]},
        }
    return {
        "tabular (conversion MLP)": {"spec": "conversion", "rows": 150_000, "epochs": 3, "extra": []},
        "session_rec (recs GRU)": {"spec": "recs", "rows": 20_000, "epochs": 3, "extra": []},
    }


def run(quick: bool, work: Path) -> Report:
    import torch

    torch.set_num_threads(1)
    repeats = 1 if quick else 3
    report = Report("training", "Training loop: rscale (Lightning Fabric) vs hand-written PyTorch, samples/s", quick,
                    settings={"repeats": repeats, "torch_threads": torch.get_num_threads(),
                              "torch": torch.__version__, "optimizer": "AdamW (lr, weight_decay from the plan)"})
    pairs = []
    for label, case in cases(quick).items():
        plan = plan_for(case["spec"], [
            f"train.max_epochs={case['epochs']}", "train.early_stopping=null", "train.gpus=0", *case["extra"],
        ])
        make = conversion_rows if case["spec"] == "conversion" else recs_rows
        train, validation = make(case["rows"], 1), make(max(1000, case["rows"] // 10), 2)
        ours_rates: list[float] = []
        hand_rates: list[float] = []
        ours_wall: list[float] = []
        hand_wall: list[float] = []
        for repeat in range(repeats):  # alternate which side goes first, so drift in load hits both
            order = [("hand", hand_fit), ("ours", rscale_fit)] if repeat % 2 else [("ours", rscale_fit), ("hand", hand_fit)]
            for side, fit in order:
                rates, wall = fit(plan, train, validation, work / f"{case['spec']}-{side}")
                (ours_rates if side == "ours" else hand_rates).extend(rates)
                (ours_wall if side == "ours" else hand_wall).append(wall)
        detail = {"model": plan.model.type, "train_rows": train.num_rows, "batch_size": plan.train.batch_size,
                  "epochs": case["epochs"]}
        report.row(f"{label}: rscale train()", "samples/s", ours_rates, **detail)
        report.row(f"{label}: hand-written loop", "samples/s", hand_rates, **detail)
        report.row(f"{label}: rscale train(), whole call", "s", ours_wall)
        report.row(f"{label}: hand-written, whole script", "s", hand_wall)
        ratio = statistics.median(ours_rates) / statistics.median(hand_rates)
        report.compare(f"{label}: samples/s vs hand-written", ratio, GOAL)
        report.compare(f"{label}: whole call, hand-written / rscale time", statistics.median(hand_wall)
                       / statistics.median(ours_wall), None)
        pairs.append((label, f"{label}: rscale train()", f"{label}: hand-written loop"))
    report.extra["pairs"] = pairs
    report.notes.append("torch.set_num_threads(1) on both sides: the 2 shared cores made 2 threads ~30x slower")
    report.notes.append("samples/s per epoch, over all epochs of all repeats; the whole call adds preprocessing, "
                        "validation, checkpoints and (rscale) the package write")
    return report


def chart(report: Report, path: Path) -> None:
    paired_chart(report, path, [tuple(p) for p in report.extra["pairs"]], "samples/s (median, min-max)")
