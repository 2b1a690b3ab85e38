"""Demo data for the embedded default: a shop's browsing sessions, with structure a model can learn.

`seed_demo` writes two tables into the stack's DuckDB warehouse, replacing old ones:
`items(item_id, category, price)` and `events(session_id, user_id, item_id, category, event_type,
event_time, device, price)` with event types view, add_to_cart and purchase, over about 60 days.

How a session is drawn. Each ingredient is a pattern seen in real shop logs; none is there to favour
one recommender, and which model wins on this data is measured (`python -m bench quality`), not designed:
- Items have power-law popularity, a category, and a price tier within their category, so popularity
  alone scores something, as it does in real shops.
- Each session starts with an intent, a category and a price tier, which may change along the way
  (8% of views switch to a new intent: shoppers change their mind).
- Each view after the first comes from a mixture: an item of the current intent, by popularity (45%); a
  successor of the previous item, items often browsed one after the other, sometimes in another
  category (25%: directed item-to-item structure that a transition count can learn); a return to an item
  viewed earlier in the session, the recent ones likelier (12%: re-views, as when comparing products);
  or a detour to a popular item anywhere in the shop (18%).
- So the last item predicts a lot (successors, re-views), the session as a whole predicts more (its
  intent), and some views are noise. Item-to-item transitions, session-kNN and sequence models all have
  something to find; the two extra generators in bench/generators.py have other structures.
- Carts and purchases depend on session features: more views and carts, a desktop device and a lower
  price tier make a purchase likelier, so `specs/conversion.yaml` has real signal to beat the majority.

Everything is vectorised with numpy (one loop over view positions, not over sessions) and seeded, so the
same arguments give the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from rscale.compiler.stack import DuckDBWarehouse

DEFAULT_SESSIONS = 20_000
START = datetime(2026, 9, 1)
DAYS = 60
DEVICES = ("mobile", "desktop", "tablet")
EVENT_TYPES = ("view", "add_to_cart", "purchase")
MIN_POOL = 10  # items per (category, price tier), so an intent always has choices


@dataclass(frozen=True)
class Shape:
    """Knobs of the generator. The defaults give a catalogue of 2k items, about 7.5 events per session."""

    items: int = 2_000
    categories: int = 24
    tiers: int = 3
    successors: int = 3
    users_per_session: float = 0.35
    max_views: int = 30
    mean_extra_views: float = 5.0
    # Where each view after the first comes from: the session's intent, a successor of the previous item,
    # an earlier view of the session, or a detour to any item (drawn by popularity ** detour_exponent).
    p_intent: float = 0.45
    p_successor: float = 0.25
    p_repeat: float = 0.12
    p_switch: float = 0.08  # chance, per view, that the session's intent changes
    detour_exponent: float = 0.7
    popularity_exponent: float = 1.05


def seed_demo(
    config: DuckDBWarehouse | None = None,
    *,
    sessions: int = DEFAULT_SESSIONS,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the demo `items` and `events` tables into a DuckDB warehouse (the default `.rs/` file).

    Returns a summary: rows per table, the warehouse path, and the arguments used.
    """
    from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig
    from rscale.warehouses.duckdb import DuckDBWarehouse as DuckDBConnection

    config = config or DuckDBConfig()
    items, events = demo_tables(sessions=sessions, seed=seed)
    with DuckDBConnection(config) as warehouse:
        warehouse.replace("items", items)
        warehouse.replace("events", events)
        path = warehouse.path
    return {
        "path": str(path) if path else ":memory:",
        "sessions": sessions,
        "seed": seed,
        "tables": {"items": items.num_rows, "events": events.num_rows},
    }


def demo_tables(
    *, sessions: int = DEFAULT_SESSIONS, seed: int = 0, shape: Shape = Shape()
) -> tuple[pa.Table, pa.Table]:
    """The `items` and `events` tables as Arrow, without touching a warehouse (tests and benchmarks use this)."""
    if sessions < 1:
        raise ValueError("sessions must be at least 1")
    if shape.items < shape.categories * shape.tiers * MIN_POOL:
        raise ValueError(
            f"a shop of {shape.categories} categories needs at least {shape.categories * shape.tiers * MIN_POOL} items"
        )
    rng = np.random.default_rng(seed)
    catalogue = _catalogue(rng, shape)
    views = _views(rng, shape, catalogue, sessions)
    events = _events(rng, shape, catalogue, views, sessions)
    item_ids = np.array([f"I{i:05d}" for i in range(shape.items)], dtype=object)
    category_names = np.array([f"C{c:02d}" for c in range(shape.categories)], dtype=object)
    items = pa.table(
        {
            "item_id": pa.array(item_ids, pa.string()),
            "category": pa.array(category_names[catalogue.category], pa.string()),
            "price": pa.array(catalogue.price, pa.float64()),
        }
    )
    return items, _events_table(events, item_ids, category_names, catalogue)


@dataclass(frozen=True)
class _Catalogue:
    popularity: np.ndarray  # probability of each item under global popularity
    category: np.ndarray  # category index per item
    tier: np.ndarray  # price tier index per item (0 cheapest)
    price: np.ndarray
    pools: np.ndarray  # (categories * tiers, pool width) item indices of each intent, -1 padded
    pool_logits: np.ndarray  # log popularity of each pool entry, -inf for padding
    intent_weights: np.ndarray  # how often each (category, tier) is a session's intent
    successors: np.ndarray  # (items, successors) item indices


def _catalogue(rng: np.random.Generator, shape: Shape) -> _Catalogue:
    n, n_cat, n_tier = shape.items, shape.categories, shape.tiers
    # Power-law popularity over a random ordering of items, so popularity and category are independent.
    rank = rng.permutation(n) + 1
    popularity = rank.astype(float) ** -shape.popularity_exponent
    popularity /= popularity.sum()
    # Category sizes vary (a few big categories), with at least MIN_POOL items per (category, tier).
    shares = rng.dirichlet(np.full(n_cat, 2.0)) * (n - n_cat * n_tier * MIN_POOL)
    sizes = np.floor(shares).astype(int) + n_tier * MIN_POOL
    sizes[: n - sizes.sum()] += 1
    category = rng.permutation(np.repeat(np.arange(n_cat), sizes))
    # Prices: a category's base price times a lognormal spread; tiers are terciles within the category.
    base = np.exp(rng.uniform(np.log(5), np.log(300), n_cat))
    price = np.floor(base[category] * np.exp(rng.normal(0, 0.6, n))) + 0.99
    tier = np.zeros(n, dtype=int)
    for c in range(n_cat):
        members = np.flatnonzero(category == c)
        order = members[np.argsort(price[members], kind="stable")]
        tier[order] = np.arange(len(order)) * n_tier // len(order)
    intent = category * n_tier + tier
    width = np.bincount(intent, minlength=n_cat * n_tier).max()
    pools = np.full((n_cat * n_tier, width), -1)
    for k in range(n_cat * n_tier):
        members = np.flatnonzero(intent == k)
        pools[k, : len(members)] = members
    pool_logits = np.where(pools >= 0, np.log(popularity[np.maximum(pools, 0)]), -np.inf)
    intent_weights = np.bincount(intent, weights=popularity, minlength=n_cat * n_tier) ** 0.5
    intent_weights /= intent_weights.sum()
    # Successors: mostly the same category (any tier), sometimes a complementary item elsewhere.
    successors = np.empty((n, shape.successors), dtype=int)
    same = rng.random((n, shape.successors)) < 0.7
    anywhere = rng.choice(n, size=(n, shape.successors), p=popularity)
    by_category = [np.flatnonzero(category == c) for c in range(n_cat)]
    for c, members in enumerate(by_category):
        rows = np.flatnonzero(category == c)
        weights = popularity[members] ** 0.5
        picks = rng.choice(members, size=(len(rows), shape.successors), p=weights / weights.sum())
        successors[rows] = np.where(same[rows], picks, anywhere[rows])
    return _Catalogue(popularity, category, tier, price, pools, pool_logits, intent_weights, successors)


@dataclass(frozen=True)
class _Views:
    items: np.ndarray  # (sessions, max_views) item index, -1 after the session's last view
    lengths: np.ndarray  # views per session
    intent: np.ndarray  # (category * tiers + tier) per session


def _views(rng: np.random.Generator, shape: Shape, catalogue: _Catalogue, sessions: int) -> _Views:
    n_intents = len(catalogue.intent_weights)
    intent = rng.choice(n_intents, size=sessions, p=catalogue.intent_weights)
    first_intent = intent.copy()
    # Items of an intent are drawn by popularity within the intent's pool (inverse CDF per row).
    weights = np.exp(catalogue.pool_logits)
    pool_cdf = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)

    def from_intent(rows: np.ndarray) -> np.ndarray:
        cdf = pool_cdf[intent[rows]]
        pick = (cdf < rng.random(rows.size)[:, None]).sum(axis=1)
        return catalogue.pools[intent[rows], np.minimum(pick, catalogue.pools.shape[1] - 1)]

    lengths = np.minimum(
        1 + rng.poisson(shape.mean_extra_views, sessions) + (rng.random(sessions) < 0.6), shape.max_views
    )
    views = np.full((sessions, shape.max_views), -1)
    popular = catalogue.popularity
    detour = popular**shape.detour_exponent
    detour /= detour.sum()
    # First view: usually an item of the intent (the shopper arrives with an intent), sometimes a popular item.
    start = from_intent(np.arange(sessions))
    views[:, 0] = np.where(rng.random(sessions) < 0.85, start, rng.choice(len(popular), sessions, p=popular))
    recency = 0.5 ** np.arange(shape.max_views)  # a re-view picks an earlier view, the recent ones likelier
    for step in range(1, shape.max_views):
        live = np.flatnonzero(lengths > step)
        if live.size == 0:
            break
        switch = live[rng.random(live.size) < shape.p_switch]
        intent[switch] = rng.choice(n_intents, size=switch.size, p=catalogue.intent_weights)
        previous = views[live, step - 1]
        source = rng.random(live.size)
        intended = from_intent(live)
        successor_slot = rng.choice(shape.successors, size=live.size, p=_successor_slot_weights(shape.successors))
        from_successor = catalogue.successors[previous, successor_slot]
        ago_cdf = np.cumsum(recency[:step]) / recency[:step].sum()
        ago = np.minimum((ago_cdf[None, :] < rng.random(live.size)[:, None]).sum(axis=1), step - 1)
        from_earlier = views[live, step - 1 - ago]
        from_popular = rng.choice(len(popular), size=live.size, p=detour)
        cut = np.cumsum([shape.p_intent, shape.p_successor, shape.p_repeat])
        views[live, step] = np.select(
            [source < cut[0], source < cut[1], source < cut[2]], [intended, from_successor, from_earlier], from_popular
        )
    return _Views(views, lengths, first_intent)


def _successor_slot_weights(k: int) -> np.ndarray:
    weights = 0.5 ** np.arange(k)
    return weights / weights.sum()


@dataclass(frozen=True)
class _Events:
    session: np.ndarray
    user: np.ndarray
    item: np.ndarray
    event_type: np.ndarray  # index into EVENT_TYPES
    seconds: np.ndarray  # seconds since START, strictly increasing within a session
    device: np.ndarray  # index into DEVICES


def _events(rng: np.random.Generator, shape: Shape, catalogue: _Catalogue, views: _Views, sessions: int) -> _Events:
    device = rng.choice(len(DEVICES), size=sessions, p=[0.55, 0.35, 0.10])
    user = _users(rng, shape, sessions)
    # Session starts over DAYS days, busier in the evening than at night.
    day = rng.integers(0, DAYS, sessions)
    hour = rng.choice(24, size=sessions, p=_hourly_traffic())
    start = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, sessions)

    # Views, flattened in session order.
    view_mask = views.items >= 0
    session_of_view = np.broadcast_to(np.arange(sessions)[:, None], views.items.shape)[view_mask]
    view_item = views.items[view_mask]
    position = np.broadcast_to(np.arange(shape.max_views)[None, :], views.items.shape)[view_mask]

    # Add to cart after a view: likelier on desktop, for cheaper tiers, and deeper into long sessions.
    engagement = rng.normal(0, 0.6, sessions)  # some shoppers are keener than others
    cart_logit = (
        -2.6
        + np.array([0.0, 0.5, 0.2])[device[session_of_view]]
        - 0.45 * catalogue.tier[view_item]
        + 0.25 * np.log1p(position)
        + engagement[session_of_view]
    )
    carted = rng.random(view_item.size) < _sigmoid(cart_logit)
    n_carts = np.bincount(session_of_view, weights=carted, minlength=sessions)

    # Purchase at the end of the session: needs a cart; likelier with more carts and views, on desktop,
    # and for cheaper carts.
    cart_price = np.bincount(session_of_view, weights=carted * catalogue.price[view_item], minlength=sessions)
    mean_cart_price = np.divide(cart_price, n_carts, out=np.zeros(sessions), where=n_carts > 0)
    buy_logit = (
        -1.0
        + 0.9 * np.log1p(n_carts)
        + 0.3 * np.log1p(views.lengths)
        + np.array([-0.3, 0.5, 0.0])[device]
        - 0.35 * np.log1p(mean_cart_price / 50)
        + 0.8 * engagement
    )
    bought = (n_carts > 0) & (rng.random(sessions) < _sigmoid(buy_logit))
    # The purchased item: the session's last carted item.
    last_cart = np.full(sessions, -1)
    np.maximum.at(last_cart, session_of_view[carted], np.flatnonzero(carted))
    bought_item = np.where(bought, view_item[np.maximum(last_cart, 0)], -1)

    # Interleave: each view, then its cart event if any; the purchase last. Gaps are seconds apart at least.
    kinds = [
        (session_of_view, view_item, np.zeros_like(view_item), position * 2),
        (session_of_view[carted], view_item[carted], np.ones(carted.sum(), dtype=int), position[carted] * 2 + 1),
        (
            np.flatnonzero(bought),
            bought_item[bought],
            np.full(bought.sum(), 2),
            np.full(bought.sum(), 10 * shape.max_views),
        ),
    ]
    session = np.concatenate([k[0] for k in kinds])
    item = np.concatenate([k[1] for k in kinds])
    event_type = np.concatenate([k[2] for k in kinds])
    slot = np.concatenate([k[3] for k in kinds])
    order = np.lexsort((slot, session))
    session, item, event_type = session[order], item[order], event_type[order]
    gap = np.where(event_type == 0, 1 + rng.exponential(35, session.size), 1 + rng.exponential(12, session.size))
    gap = np.floor(gap).astype(np.int64)
    first = np.r_[True, session[1:] != session[:-1]]
    gap[first] = 0
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[first], np.bincount(session, minlength=sessions))  # every session has a view
    seconds = start[session] + elapsed
    return _Events(session, user[session], item, event_type, seconds, device[session])


def _users(rng: np.random.Generator, shape: Shape, sessions: int) -> np.ndarray:
    """A user per session: a few users come back often (power law), most visit once or twice."""
    n_users = max(1, int(sessions * shape.users_per_session))
    weights = (np.arange(n_users) + 1.0) ** -0.8
    return rng.choice(n_users, size=sessions, p=weights / weights.sum())


def _hourly_traffic() -> np.ndarray:
    hours = np.arange(24)
    traffic = 0.3 + np.exp(-0.5 * ((hours - 20) / 3.0) ** 2) + 0.5 * np.exp(-0.5 * ((hours - 12) / 2.0) ** 2)
    return traffic / traffic.sum()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _events_table(events: _Events, item_ids: np.ndarray, category_names: np.ndarray, catalogue: _Catalogue) -> pa.Table:
    session_ids = np.char.add("S", np.char.zfill(events.session.astype(str), 7))
    user_ids = np.char.add("U", np.char.zfill(events.user.astype(str), 6))
    start = np.datetime64(START, "s")
    return pa.table(
        {
            "session_id": pa.array(session_ids, pa.string()),
            "user_id": pa.array(user_ids, pa.string()),
            "item_id": pa.array(item_ids[events.item], pa.string()),
            "category": pa.array(category_names[catalogue.category[events.item]], pa.string()),
            "event_type": pa.array(np.array(EVENT_TYPES, dtype=object)[events.event_type], pa.string()),
            "event_time": pa.array(start + events.seconds.astype("timedelta64[s]"), pa.timestamp("us")),
            "device": pa.array(np.array(DEVICES, dtype=object)[events.device], pa.string()),
            "price": pa.array(catalogue.price[events.item], pa.float64()),
        }
    )
