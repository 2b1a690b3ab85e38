"""Ask ZenML's local SQLite store, read-only and without importing ZenML, which cached step runs still exist.

A step is only served from the cache while a completed step run with its cache key is in the store (and
not expired): a run deleted from ZenML (`zenml pipeline runs delete`) takes its cache entries with it. The
run records keep ZenML's own cache key of every step, so `rs plan` checks them here. This reads one
column of ZenML 0.98's `step_run` table; any other store (a ZenML server) or another schema answers None,
and the prediction then rests on the run records alone.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from rscale.paths import state_dir

SQLITE = "sqlite:///"


def store_file() -> Path | None:
    """The SQLite file of ZenML's store, as `rscale.paths.use_project_state` points ZenML at it; None otherwise."""
    url = os.environ.get("ZENML_STORE_URL") or f"{SQLITE}{state_dir() / 'zenml' / 'zenml.db'}"
    if not url.startswith(SQLITE):
        return None
    path = Path(url[len(SQLITE):])
    return path if path.is_file() else None


def cached_keys(keys: set[str]) -> set[str] | None:
    """Which of these ZenML cache keys have a completed, unexpired step run; None when the store cannot be read."""
    path = store_file()
    if path is None or not keys:
        return None
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    marks = ",".join("?" * len(keys))
    query = (
        f"SELECT DISTINCT cache_key FROM step_run WHERE status = 'completed' AND cache_key IN ({marks}) "
        "AND (cache_expires_at IS NULL OR cache_expires_at > ?)"
    )
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return None
    try:
        return {row[0] for row in connection.execute(query, [*sorted(keys), now])}
    except sqlite3.Error:  # another ZenML schema, or the file is busy: fall back to the run records
        return None
    finally:
        connection.close()
