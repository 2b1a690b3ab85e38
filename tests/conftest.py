"""Test-wide set-up: every test session gets its own project folder, so nothing touches the repo's .rs/ or home.

ZenML reads its store location when first imported, so the environment is fixed here, at import time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="rscale-tests-"))
os.environ["RS_PROJECT_DIR"] = str(_SESSION_DIR)
os.environ["RS_STACKS_DIR"] = str(REPO / "stacks")
os.environ.setdefault("MPLBACKEND", "Agg")

from rscale.paths import use_project_state  # noqa: E402

use_project_state()


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def session_project() -> Path:
    """The project folder shared by the whole test session (ZenML's store lives here)."""
    return _SESSION_DIR


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project folder with the repo's specs and stacks, as the working directory."""
    for folder in ("specs", "stacks"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RS_PROJECT_DIR", str(tmp_path))
    return tmp_path


EVENTS = """
CREATE TABLE events AS SELECT * FROM (VALUES
  ('s1', 'i1', TIMESTAMP '2024-01-01 10:00:00', 'view', 'shoes', 'mobile', 10.0),
  ('s1', 'i2', TIMESTAMP '2024-01-01 10:01:00', 'view', 'shoes', 'mobile', 12.5),
  ('s2', 'i3', TIMESTAMP '2024-01-02 09:00:00', 'purchase', 'hats', 'desktop', 5.0)
) AS t(session_id, item_id, event_time, event_type, category, device, price)
"""


@pytest.fixture
def warehouse(project: Path) -> Path:
    """The project's DuckDB warehouse holding a three-row `events` table with the columns the example specs
    query, so the data contract can be asked."""
    import duckdb

    path = project / ".rs" / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(EVENTS)
    return path
