"""Column profiles and table listings, on DuckDB and on Snowflake (fakesnow server), and the feature types
inference reads from them: the same table profiles alike on both (issue 14: inference on both warehouses)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from snowflake_server import create_database, fake_snowflake

import rscale.warehouses.snowflake as snowflake_module
from rscale.compiler.inference import infer_target, infer_type
from rscale.compiler.stack import DuckDBWarehouse as DuckDBConfig
from rscale.compiler.stack import SnowflakeWarehouse as SnowflakeConfig
from rscale.warehouses.duckdb import DuckDBWarehouse
from rscale.warehouses.profile import profile_query
from rscale.warehouses.snowflake import SnowflakeWarehouse

ROWS = 60
PATIENTS = pa.table(
    {
        "patient_id": [f"p{i:03d}" for i in range(ROWS)],
        "radius": [10.0 + (i % 17) * 0.37 for i in range(ROWS)],
        "visits": pa.array([i % 9 for i in range(ROWS)], pa.int64()),
        "smoker": [i % 4 == 0 for i in range(ROWS)],
        "site": [("north", "south", "east")[i % 3] if i % 10 else None for i in range(ROWS)],
        "notes": ["follow-up visit scheduled after the second scan came back clear " * (1 + i % 2) for i in range(ROWS)],
        "malignant": pa.array([int(i % 5 == 0) for i in range(ROWS)], pa.int64()),
    }
)
EXPECTED = {
    "patient_id": "categorical", "radius": "numeric", "visits": "numeric", "smoker": "binary",
    "site": "categorical", "notes": "text", "malignant": "binary",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[dict[str, Any]]:
    snowflake_module.LOGIN_TIMEOUT_S = 10
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SNOWFLAKE_")}
    try:
        with fake_snowflake() as (fields, _gate):
            create_database(fields)
            yield fields
    finally:
        os.environ.update(saved)


@pytest.fixture
def snowflake(fake: dict[str, Any]) -> Iterator[SnowflakeWarehouse]:
    with SnowflakeWarehouse(SnowflakeConfig.model_validate(fake)) as warehouse:
        warehouse.replace("patients", PATIENTS)
        yield warehouse


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    with DuckDBWarehouse(DuckDBConfig(path=str(tmp_path / "w.duckdb"))) as warehouse:
        warehouse.replace("patients", PATIENTS)
        warehouse.execute("CREATE VIEW adults AS SELECT * FROM patients WHERE visits > 2")
        yield warehouse


def _summary(profiles: list[Any]) -> dict[str, tuple[Any, ...]]:
    return {p.name: (p.rows, p.nulls, p.distinct, p.values) for p in profiles}


def test_duckdb_profile_counts_nulls_distinct_values_and_lengths(duck: DuckDBWarehouse) -> None:
    profiles = {p.name: p for p in profile_query(duck, "SELECT * FROM patients")}
    site = profiles["site"]
    assert (site.rows, site.nulls, site.distinct, site.values) == (ROWS, 6, 3, ["east", "north", "south"])
    assert round(site.null_share, 2) == 0.1
    assert profiles["radius"].min == 10.0 and profiles["visits"].max == 8
    assert profiles["malignant"].values == [0, 1]
    assert profiles["notes"].avg_length is not None and profiles["notes"].avg_length > 40
    assert profiles["patient_id"].distinct == ROWS and profiles["patient_id"].values is None
    assert {name: infer_type(p)[0] for name, p in profiles.items()} == EXPECTED
    assert infer_target(profiles["malignant"], "tabular")[0] == "binary"
    assert infer_target(profiles["radius"], "tabular")[0] == "numeric"


def test_profile_reads_at_most_the_given_rows(duck: DuckDBWarehouse) -> None:
    (visits,) = [p for p in profile_query(duck, "SELECT visits FROM patients", rows=10)]
    assert visits.rows == 10 and visits.distinct == 9


def test_duckdb_lists_tables_and_views(duck: DuckDBWarehouse) -> None:
    assert duck.tables() == [
        {"name": "adults", "kind": "view", "rows": None, "columns": 7},
        {"name": "patients", "kind": "table", "rows": ROWS, "columns": 7},
    ]


def test_snowflake_profiles_like_duckdb_and_infers_the_same_types(
    snowflake: SnowflakeWarehouse, duck: DuckDBWarehouse
) -> None:
    on_snowflake = profile_query(snowflake, "SELECT * FROM patients")
    on_duckdb = profile_query(duck, "SELECT * FROM patients")
    assert [p.name for p in on_snowflake] == list(EXPECTED)  # rscale's lower-case names, not PATIENT_ID
    assert _summary(on_snowflake) == _summary(on_duckdb)
    assert {p.name: infer_type(p)[0] for p in on_snowflake} == EXPECTED


def test_snowflake_lists_its_tables(snowflake: SnowflakeWarehouse) -> None:
    found = {t["name"]: t for t in snowflake.tables()}
    assert found["patients"]["kind"] == "table" and found["patients"]["columns"] == 7


def test_compiling_on_the_snowflake_stack_infers_the_features(
    fake: dict[str, Any], snowflake: SnowflakeWarehouse, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rscale.compiler.compilation import compile_document
    from rscale.compiler.load import load_text

    env = {"ACCOUNT": "account", "USER": "user", "PASSWORD": "password", "HOST": "host",
           "PORT": "port", "PROTOCOL": "protocol", "DATABASE": "database", "SCHEMA": "schema"}
    for variable, field in env.items():
        monkeypatch.setenv(f"SNOWFLAKE_{variable}", str(fake[field]))
    text = (
        "spec_version: 1\nname: patients\ndata:\n  query: SELECT * FROM patients\n"
        "features:\n  id: patient_id\n  exclude: [notes]\n  target: malignant\nmodel: {type: tabular}\n"
    )
    compiled = compile_document(load_text(text, "specs/patients.yaml"), stack="snowflake")
    plan = compiled.plans[0]
    assert [(f.name, f.type) for f in plan.features.inputs] == [
        ("radius", "numeric"), ("visits", "numeric"), ("smoker", "binary"), ("site", "categorical")
    ]
    assert plan.features.target.type == "binary" and plan.task == "classification" and compiled.contract_checked
