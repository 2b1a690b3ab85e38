"""Live and shifted demo traffic: turn `demo_tables()` output into sessions happening now, optionally shifted.

The demo needs traffic whose outcomes land after the endpoint answered, as in production: a shopper views
items, the endpoint recommends, and only then does the next view happen. `live_sessions` re-times fresh
demo sessions to end now and holds back each session's last view (and the carts and purchases after it):
the rest goes into `events` (what requests are built from), the held-back part waits in `pending_events`
until `land_pending` appends it to `events` stamped with the current time, i.e. after the predictions.

`shift_events` changes the traffic so monitoring has something to find: a share of the viewed items are
new to the catalogue (out of vocabulary for a trained model), prices rise, and every session comes from
one device. It transforms the tables the generator returns and leaves the generator alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LIVE_PREFIX = "live-"
PENDING_TABLE = "pending_events"
SKIP_SESSIONS = 7919  # fresh sessions are drawn after this many, so they are not the training sessions again


def fresh_events(sessions: int, seed: int) -> pa.Table:
    """Events of `sessions` new sessions from the shop `rs seed --seed SEED` made: the same catalogue (the
    generator draws it first from the seed), sessions drawn after the first SKIP_SESSIONS."""
    from rscale.data.seed import demo_tables

    _, events = demo_tables(sessions=SKIP_SESSIONS + sessions, seed=seed)
    return events.filter(pc.greater_equal(events.column("session_id"), f"S{SKIP_SESSIONS:07d}"))


@dataclass(frozen=True)
class Shift:
    """How shifted traffic differs from the training data."""

    new_item_share: float = 0.6  # share of events whose item is replaced by one the catalogue never had
    price_factor: float = 3.0
    device: str = "tablet"


def shift_events(events: pa.Table, shift: Shift = Shift(), seed: int = 0) -> pa.Table:
    """`events` with new items, higher prices and one device, as `Shift` says."""
    rng = np.random.default_rng(seed)
    rows = events.num_rows
    replace = rng.random(rows) < shift.new_item_share
    new_ids = np.array([f"N{i:05d}" for i in rng.integers(0, 5000, rows)], dtype=object)
    items = np.where(replace, new_ids, np.array(events.column("item_id").to_pylist(), dtype=object))
    out = events.set_column(events.schema.get_field_index("item_id"), "item_id", pa.array(items, pa.string()))
    out = out.set_column(
        out.schema.get_field_index("price"), "price", pc.multiply(out.column("price"), shift.price_factor)
    )
    return out.set_column(out.schema.get_field_index("device"), "device", pa.array([shift.device] * rows, pa.string()))


def live_sessions(events: pa.Table, now: datetime | None = None, tag: str = "") -> tuple[pa.Table, pa.Table]:
    """Split fresh sessions into what already happened (ending now) and what will happen next (held back).

    Session ids get the prefix `live-<tag>`, so live sessions never collide with the training data's. Each
    session is moved in time so its last event is at `now`; the held-back part (its last view and whatever
    followed) is returned separately, to be landed later by `land_pending`.
    """
    now_naive = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    sessions = np.array(events.column("session_id").to_pylist(), dtype=object)
    times = events.column("event_time").cast(pa.timestamp("us")).to_numpy().astype("datetime64[us]")
    types = np.array(events.column("event_type").to_pylist(), dtype=object)
    order = np.lexsort((times, sessions))
    sessions, times, types = sessions[order], times[order], types[order]
    table = events.take(pa.array(order))
    is_view = types == "view"
    held = np.zeros(len(order), dtype=bool)
    shifted = np.empty(len(order), dtype="datetime64[us]")
    target = np.datetime64(now_naive, "us")
    boundaries = np.flatnonzero(np.r_[True, sessions[1:] != sessions[:-1], True])
    for start, stop in zip(boundaries[:-1], boundaries[1:], strict=True):
        views = np.flatnonzero(is_view[start:stop])
        if views.size >= 2:  # a session needs a history to send and a next view to land
            held[start + views[-1] : stop] = True
        shifted[start:stop] = times[start:stop] + (target - times[stop - 1])
    ids = pa.array([f"{LIVE_PREFIX}{tag}{s}" for s in sessions], pa.string())
    table = table.set_column(table.schema.get_field_index("session_id"), "session_id", ids)
    table = table.set_column(
        table.schema.get_field_index("event_time"), "event_time", pa.array(shifted, pa.timestamp("us"))
    )
    return table.filter(pa.array(~held)), table.filter(pa.array(held))


def land_pending(pending: pa.Table, now: datetime | None = None) -> pa.Table:
    """The held-back events stamped from `now` on (keeping their order and spacing within a session)."""
    if pending.num_rows == 0:
        return pending
    now_naive = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    times = pending.column("event_time").cast(pa.timestamp("us")).to_numpy().astype("datetime64[us]")
    sessions = np.array(pending.column("session_id").to_pylist(), dtype=object)
    first: dict[str, np.datetime64] = {}
    for session, ts in zip(sessions, times, strict=True):
        first[session] = min(first.get(session, ts), ts)
    base = np.datetime64(now_naive + timedelta(seconds=1), "us")
    landed = np.array([base + (ts - first[s]) for s, ts in zip(sessions, times, strict=True)], dtype="datetime64[us]")
    return pending.set_column(
        pending.schema.get_field_index("event_time"), "event_time", pa.array(landed, pa.timestamp("us"))
    )
