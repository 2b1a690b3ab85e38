"""The transpile cache: a query compiled once is not parsed again, by this process or the next, and the
cached result is the one sqlglot gives (SQL, warnings and where they point)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rscale.compiler import sql
from rscale.compiler.sql import transpile

QUERY = "SELECT id,\n  TO_VARCHAR(d, 'YYYY-MM') AS month\nFROM t;"  # one warning, on line 2

NEXT_PROCESS = """
import json, sys
from rscale.compiler.sql import transpile
found = transpile(sys.argv[1], "snowflake", "duckdb")
print(json.dumps({"sql": found.sql, "warnings": list(found.warnings),
                  "lines": [f.line for f in found.findings], "sqlglot": "sqlglot" in sys.modules}))
"""


@pytest.fixture(autouse=True)
def fresh_process_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: without the results this process kept."""
    monkeypatch.setattr(sql, "_TRANSPILED", {})


def cached_files(project: Path) -> list[Path]:
    return sorted((project / ".rs" / "cache" / "sql").glob("*.json"))


def test_the_next_process_reads_the_result_without_sqlglot(project: Path) -> None:
    first = transpile(QUERY, "snowflake", "duckdb")
    assert len(cached_files(project)) == 1
    ran = subprocess.run([sys.executable, "-c", NEXT_PROCESS, QUERY], capture_output=True, text=True, check=True)
    again = json.loads(ran.stdout)
    assert again == {"sql": first.sql, "warnings": list(first.warnings), "lines": [2], "sqlglot": False}


def test_an_unreadable_cache_file_is_computed_again(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = transpile(QUERY, "snowflake", "duckdb")
    (path,) = cached_files(project)
    path.write_text("{not json")
    monkeypatch.setattr(sql, "_TRANSPILED", {})  # forget this process's result too
    assert transpile(QUERY, "snowflake", "duckdb") == first
    assert json.loads(path.read_text())["sql"] == first.sql  # and written back whole


def test_a_query_that_does_not_parse_is_never_cached(project: Path) -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="not valid snowflake SQL"):
            transpile("SELECT FROM WHERE (", "snowflake", "duckdb")
    assert cached_files(project) == []


def test_another_dialect_pair_is_another_entry(project: Path) -> None:
    duckdb = transpile("SELECT IFF(a > 1, 'x', 'y') AS v FROM t", "snowflake", "duckdb")
    same = transpile("SELECT IFF(a > 1, 'x', 'y') AS v FROM t", "snowflake", "snowflake")
    assert same.sql != duckdb.sql
    assert len(cached_files(project)) == 1  # the same dialect is not transpiled, so not cached
