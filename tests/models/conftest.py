"""Fixtures for model tests: compiled plans and tiny synthetic tables with a learnable signal.

Model tests share 2 busy CPU cores: one intra-op thread avoids thread contention that makes them 5x slower.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]


def plan_for(spec: str, overrides: list[str] | None = None):  # type: ignore[no-untyped-def]
    from rscale.compiler.compilation import compile_spec

    return compile_spec(REPO / "specs" / f"{spec}.yaml", overrides or [], offline=True).plans[0]


def recs_table(rows: int, seed: int = 0, items: int = 40) -> pa.Table:
    """Sessions walking a ring of items (i -> i+1, sometimes i+2): the next item follows from the last one."""
    rng = np.random.default_rng(seed)
    sessions, targets = [], []
    for _ in range(rows):
        position = int(rng.integers(items))
        length = int(rng.integers(1, 7))
        history = []
        for _ in range(length):
            history.append(f"item{position}")
            position = (position + (1 if rng.random() < 0.8 else 2)) % items
        sessions.append(history)
        targets.append(f"item{position}")
    return pa.table({
        "session_id": [f"s{seed}_{i}" for i in range(rows)],
        "items": pa.array(sessions, pa.list_(pa.string())),
        "next_item": targets,
        "session_end": pa.array(np.arange(rows), pa.int64()),
    })


def conversion_table(rows: int, seed: int = 0) -> pa.Table:
    """Sessions whose purchase depends on carts and device; `spend` and `segment` are extra targets for tests."""
    rng = np.random.default_rng(seed)
    n_views = rng.poisson(5, rows).astype(float)
    n_carts = rng.poisson(1, rows).astype(float)
    device = rng.choice(["mobile", "desktop", "tablet"], rows)
    logit = -2.0 + 1.5 * n_carts + (device == "desktop") * 1.0
    purchased = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    avg_price = rng.gamma(2.0, 20.0, rows)
    avg_price[:3] = np.nan  # nulls become the mean
    spend = 3.0 * n_carts + 0.5 * n_views + rng.normal(0, 0.5, rows)
    segment = np.where(n_carts >= 2, "buyer", np.where(n_views >= 5, "browser", "visitor"))
    return pa.table({
        "session_id": [f"c{seed}_{i}" for i in range(rows)],
        "n_views": n_views,
        "n_carts": n_carts,
        "n_categories": rng.integers(1, 4, rows).astype(float),
        "duration_s": rng.exponential(100, rows),
        "avg_price": pa.array(avg_price, from_pandas=True),
        "device": device,
        "purchased": purchased,
        "spend": spend,
        "segment": segment,
        "review": np.where(purchased == 1, "great fast shipping love it", "slow broken would not buy"),
    })


@pytest.fixture(scope="session")
def recs_plan():  # type: ignore[no-untyped-def]
    return plan_for("recs", ["train.max_epochs=4", "model.dim=16", "train.batch_size=128"])


@pytest.fixture(scope="session")
def conversion_plan():  # type: ignore[no-untyped-def]
    return plan_for("conversion", ["train.max_epochs=4", "train.batch_size=64"])
