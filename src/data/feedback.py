"""Close the loop: load the endpoint's prediction log into the warehouse, and join it with what happened next.

A running endpoint must not hold the warehouse (a DuckDB file has one writer at a time), so it appends
each prediction as a JSON line under `.rs/predictions/<name>/` (one file per server process, with
request_id, ts, model_version, plan_hash, index, inputs and outputs). `ingest_predictions` loads the
lines not yet loaded into the table `<name>_predictions`; the run's load step calls it first.

Idempotence without a side table: every row records the file it came from and the byte offset just
after its line (`source_file`, `source_end`), and all new rows go in with one append. So
`MAX(source_end)` per file is exactly how far that file was loaded, a crash can never record progress
without the rows, and only complete lines (ending in a newline) are read, so a file still being written
is picked up where it was left next time, never counted twice.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rscale.paths import predictions_dir

if TYPE_CHECKING:
    from rscale.warehouses import Warehouse

log = logging.getLogger(__name__)

PREDICTIONS_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("record_index", pa.int32()),  # the record's position in its request (a request may hold many)
        ("model_version", pa.string()),
        ("plan_hash", pa.string()),
        ("inputs", pa.string()),  # the request record, as JSON text
        ("outputs", pa.string()),  # the response for that record, as JSON text
        ("ts", pa.timestamp("us")),  # UTC
        ("source_file", pa.string()),  # file name under .rs/predictions/<name>/
        ("source_end", pa.int64()),  # byte offset just after this line in that file
    ]
)


def predictions_table(name: str) -> str:
    return f"{name}_predictions"


def ingest_predictions(warehouse: Warehouse, name: str, directory: Path | None = None) -> int:
    """Load the prediction lines of use case `name` not loaded yet into `<name>_predictions`. Returns rows added.

    Safe to call any number of times, also while the endpoint is writing: a line is loaded once.
    """
    folder = directory or predictions_dir(name)
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        return 0
    table = predictions_table(name)
    loaded = _loaded_offsets(warehouse, table)
    columns: dict[str, list[Any]] = {field.name: [] for field in PREDICTIONS_SCHEMA}
    skipped = 0
    for path in files:
        start = loaded.get(path.name, 0)
        size = path.stat().st_size
        if size < start:
            log.warning(
                "%s is shorter than the %d bytes already loaded from it; it was rewritten, so it is skipped",
                path,
                start,
            )
            continue
        if size == start:
            continue
        with path.open("rb") as handle:
            handle.seek(start)
            chunk = handle.read(size - start)
        complete = chunk.rfind(b"\n") + 1  # a last line without its newline is still being written
        offset = start
        for line in chunk[:complete].splitlines(keepends=True):
            offset += len(line)
            row = _row(line, path.name, offset)
            if row is None:
                skipped += 1
                continue
            for key, value in row.items():
                columns[key].append(value)
    if skipped:
        log.warning("skipped %d prediction line(s) that were not valid JSON records", skipped)
    rows = len(columns["request_id"])
    if rows == 0:
        return 0
    return warehouse.append(table, pa.table(columns, schema=PREDICTIONS_SCHEMA))


def _loaded_offsets(warehouse: Warehouse, table: str) -> dict[str, int]:
    if not warehouse.table_exists(table):
        return {}
    done = warehouse.query_arrow(f'SELECT source_file, MAX(source_end) AS loaded FROM "{table}" GROUP BY source_file')
    return dict(zip(done.column("source_file").to_pylist(), done.column("loaded").to_pylist(), strict=True))


def _row(line: bytes, source_file: str, end: int) -> dict[str, Any] | None:
    """One log line as a row of PREDICTIONS_SCHEMA; None for a line that is not a prediction record."""
    try:
        record = json.loads(line)
        ts = datetime.fromisoformat(record["ts"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(record, dict) or "request_id" not in record:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return {
        "request_id": str(record["request_id"]),
        "record_index": int(record.get("index", 0)),
        "model_version": _text(record.get("model_version")),
        "plan_hash": _text(record.get("plan_hash")),
        "inputs": json.dumps(record.get("inputs"), separators=(",", ":")),
        "outputs": json.dumps(record.get("outputs"), separators=(",", ":")),
        "ts": ts,
        "source_file": source_file,
        "source_end": end,
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


_FEEDBACK_DUCKDB = """
WITH predictions AS (
  SELECT request_id, record_index, model_version, ts,
         inputs ->> '$.{id}' AS {id},
         CAST(outputs -> '$.{outputs_key}' AS VARCHAR[]) AS recommended
  FROM {table}
),
next_views AS (
  SELECT p.request_id, p.record_index, e.{item} AS item, e.{time} AS event_time,
         ROW_NUMBER() OVER (PARTITION BY p.request_id, p.record_index ORDER BY e.{time}) AS n
  FROM predictions AS p
  JOIN {events} AS e ON e.{id} = p.{id} AND e.{time} > p.ts{event_filter}
)
SELECT p.request_id, p.record_index, p.model_version, p.ts, p.{id},
       v.item AS next_item, v.event_time AS next_time,
       LIST_POSITION(p.recommended, v.item) AS rank,
       COALESCE(LIST_CONTAINS(p.recommended, v.item), FALSE) AS hit
FROM predictions AS p
LEFT JOIN next_views AS v
  ON v.request_id = p.request_id AND v.record_index = p.record_index AND v.n = 1
"""

_FEEDBACK_SNOWFLAKE = """
WITH predictions AS (
  SELECT request_id, record_index, model_version, ts,
         PARSE_JSON(inputs):{id}::STRING AS {id},
         PARSE_JSON(outputs):{outputs_key} AS recommended
  FROM {table}
),
next_views AS (
  SELECT p.request_id, p.record_index, e.{item} AS item, e.{time} AS event_time,
         ROW_NUMBER() OVER (PARTITION BY p.request_id, p.record_index ORDER BY e.{time}) AS n
  FROM predictions AS p
  JOIN {events} AS e ON e.{id} = p.{id} AND e.{time} > p.ts{event_filter}
)
SELECT p.request_id, p.record_index, p.model_version, p.ts, p.{id},
       v.item AS next_item, v.event_time AS next_time,
       ARRAY_POSITION(v.item::VARIANT, p.recommended) + 1 AS rank,
       COALESCE(ARRAY_CONTAINS(v.item::VARIANT, p.recommended), FALSE) AS hit
FROM predictions AS p
LEFT JOIN next_views AS v
  ON v.request_id = p.request_id AND v.record_index = p.record_index AND v.n = 1
"""


def feedback_sql(
    name: str,
    *,
    dialect: str = "duckdb",
    events: str = "events",
    id_column: str = "session_id",
    item_column: str = "item_id",
    time_column: str = "event_time",
    event_filter: str | None = "event_type = 'view'",
    outputs_key: str = "items",
) -> str:
    """SQL joining each logged recommendation with the first event after it in the same session.

    One row per prediction: the next item viewed (NULL when none came yet), its 1-based `rank` in the
    recommended list (NULL when absent) and `hit`. It needs the request to carry the session id
    (`inputs.<id_column>`) and the response to list items under `outputs.<outputs_key>`. Hand-written
    per dialect: sqlglot 30.22 carries Snowflake's VARIANT array functions to DuckDB as casts to a
    VARIANT type and array calls on JSON, which do not run.
    """
    templates = {"duckdb": _FEEDBACK_DUCKDB, "snowflake": _FEEDBACK_SNOWFLAKE}
    if dialect not in templates:
        raise ValueError(f"no feedback query for dialect {dialect!r}; written for: {', '.join(templates)}")
    return (
        templates[dialect]
        .format(
            table=predictions_table(name),
            events=events,
            id=id_column,
            item=item_column,
            time=time_column,
            outputs_key=outputs_key,
            event_filter=f" AND e.{event_filter}" if event_filter else "",
        )
        .strip()
    )
