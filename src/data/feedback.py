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

Rotation: the writer starts a new file by size or age (names sort chronologically). A new name is
ingested from its start, unless its first line is the first line of a file already loaded under another
name (a file renamed by rotation), whose progress it then continues. Retention (`feedback.retention`)
deletes files older than it, only once every complete line of them is in the warehouse.

Outcomes: the spec's `feedback` block says where the outcome of a prediction lands. `outcome_join_sql`
joins every logged prediction with its outcome in the warehouse (DuckDB or Snowflake), and
`create_outcomes_view` keeps `<name>_outcomes` defined as that join, so a spec's query can train on served
predictions and what followed them.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rscale.paths import predictions_dir

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan
    from rscale.compiler.spec import Spec
    from rscale.compiler.spec.feedback import FeedbackSpec
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


def outcomes_view(name: str) -> str:
    return f"{name}_outcomes"


def ingest_predictions(
    warehouse: Warehouse, name: str, directory: Path | None = None, *, retention_s: float | None = None
) -> int:
    """Load the prediction lines of use case `name` not loaded yet into `<name>_predictions`. Returns rows added.

    Safe to call any number of times, also while the endpoint is writing: a line is loaded once, across
    rotated files too. With `retention_s`, files last written longer ago than that and fully loaded are deleted.
    """
    folder = directory or predictions_dir(name)
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        return 0
    table = predictions_table(name)
    loaded = _loaded_offsets(warehouse, table)
    columns: dict[str, list[Any]] = {field.name: [] for field in PREDICTIONS_SCHEMA}
    skipped = 0
    done: dict[Path, int] = {}  # file -> bytes of it in the warehouse after this call
    for path in files:
        start = loaded.get(path.name)
        if start is None:
            start = _renamed_progress(warehouse, table, path, loaded) if loaded else 0
        done[path] = start
        size = path.stat().st_size
        if size < start:
            log.warning(
                "%s is shorter than the %d bytes already loaded from it; it was rewritten, so it is skipped",
                path,
                start,
            )
            done[path] = 0  # never "fully loaded": retention keeps it for a person to look at
            continue
        if size == start:
            continue
        with path.open("rb") as handle:
            handle.seek(start)
            chunk = handle.read(size - start)
        complete = chunk.rfind(b"\n") + 1  # a last line without its newline is still being written
        done[path] = start + complete
        offset = start
        for line in chunk[:complete].splitlines(keepends=True):
            offset += len(line)
            line_rows = _rows(line, path.name, offset)
            if line_rows is None:
                skipped += 1
                continue
            for row in line_rows:
                for key, value in row.items():
                    columns[key].append(value)
    if skipped:
        log.warning("skipped %d prediction line(s) that were not valid JSON records", skipped)
    rows = len(columns["request_id"])
    added = warehouse.append(table, pa.table(columns, schema=PREDICTIONS_SCHEMA)) if rows else 0
    if retention_s is not None:
        remove_expired_logs(done, retention_s)
    return added


def remove_expired_logs(done: dict[Path, int], retention_s: float, now: float | None = None) -> list[Path]:
    """Delete the log files last modified more than `retention_s` ago whose every byte is in the warehouse.

    A file with lines not loaded yet (or a line still being written) is kept whatever its age, so retention
    never loses a prediction. Returns the deleted paths.
    """
    now = time.time() if now is None else now
    removed = []
    for path, loaded in done.items():
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if now - stat.st_mtime > retention_s and loaded >= stat.st_size:
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d prediction log file(s) older than %.0f s, all ingested", len(removed), retention_s)
    return removed


def _renamed_progress(warehouse: Warehouse, table: str, path: Path, loaded: dict[str, int]) -> int:
    """How far a file with a new name was loaded under an old name: rotation may rename a file being read.

    The first line of a file identifies it (a request id and a time). When rows from that line were loaded
    from another file that ended it at the same offset, that file is this one, and its progress carries over.
    """
    with path.open("rb") as handle:
        first = handle.readline()
    if not first.endswith(b"\n"):
        return 0
    rows = _rows(first, path.name, len(first))
    if not rows:
        return 0
    row = rows[0]
    request_id = row["request_id"].replace("'", "''")
    found = warehouse.query_arrow(
        f"SELECT DISTINCT source_file FROM \"{table}\" WHERE request_id = '{request_id}' "
        f"AND record_index = {row['record_index']} AND source_end = {len(first)}"
    )
    names = [n for n in found.column("source_file").to_pylist() if n != path.name and n in loaded]
    if not names:
        return 0
    previous = max(loaded[n] for n in names)
    log.info("%s continues %s (renamed by rotation): loading from byte %d", path.name, names[0], previous)
    return previous if previous <= path.stat().st_size else 0


def _loaded_offsets(warehouse: Warehouse, table: str) -> dict[str, int]:
    if not warehouse.table_exists(table):
        return {}
    done = warehouse.query_arrow(f'SELECT source_file, MAX(source_end) AS loaded FROM "{table}" GROUP BY source_file')
    return dict(zip(done.column("source_file").to_pylist(), done.column("loaded").to_pylist(), strict=True))


def _rows(line: bytes, source_file: str, end: int) -> list[dict[str, Any]] | None:
    """One log line as rows of PREDICTIONS_SCHEMA, one a record; None for a line that is not a prediction.

    Reads both formats the server has written (rscale.serving.server.PredictionLog): a line per request
    (`"records": N`, `inputs` and `outputs` the arrays of its N records) gives N rows, record_index 0..N-1;
    a line per record (earlier versions, `"index": i`) gives its one row. The rows are the same either way.
    """
    try:
        record = json.loads(line)
        ts = datetime.fromisoformat(record["ts"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(record, dict) or "request_id" not in record:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    common = {
        "request_id": str(record["request_id"]),
        "model_version": _text(record.get("model_version")),
        "plan_hash": _text(record.get("plan_hash")),
        "ts": ts,
        "source_file": source_file,
        "source_end": end,
    }
    inputs, outputs = record.get("inputs"), record.get("outputs")
    if "records" in record and "index" not in record:  # one line per request
        if not isinstance(inputs, list) or not isinstance(outputs, list):
            return None
        return [
            {**common, "record_index": index, "inputs": _json(text_in), "outputs": _json(text_out)}
            for index, (text_in, text_out) in enumerate(zip(inputs, outputs, strict=False))
        ]
    return [{**common, "record_index": int(record.get("index", 0)), "inputs": _json(inputs), "outputs": _json(outputs)}]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)




# -- outcomes ------------------------------------------------------------------------------------------------

# Written once in Snowflake's dialect and transpiled for the warehouse; the spec's own outcome query (in
# data.dialect) becomes the first CTE. The outputs stay JSON text: metrics over them (is the outcome among
# the recommended items?) are computed in Python, which spares dialect-specific VARIANT array functions.
_JOIN = """
WITH predictions AS (
  SELECT request_id, record_index, model_version, ts, inputs, outputs,
         JSON_EXTRACT_PATH_TEXT(inputs, '{id}') AS outcome_key
  FROM {table}
),
matched AS (
  SELECT p.request_id, p.record_index, o.outcome, o.outcome_time,
         ROW_NUMBER() OVER (PARTITION BY p.request_id, p.record_index ORDER BY {order}) AS n
  FROM predictions AS p
  JOIN rs_outcomes AS o
    ON CAST(o.outcome_key AS VARCHAR) = p.outcome_key
   AND o.outcome_time > p.ts
   AND o.outcome_time <= DATEADD('second', {horizon}, p.ts)
)
SELECT p.request_id, p.record_index, p.model_version, p.ts, p.outcome_key, p.inputs, p.outputs,
       m.outcome, m.outcome_time
FROM predictions AS p
LEFT JOIN matched AS m
  ON m.request_id = p.request_id AND m.record_index = p.record_index AND m.n = 1
"""


def outcome_join_sql(name: str, feedback: FeedbackSpec, id_column: str, dialect: str, warehouse: str) -> str:
    """SQL for `warehouse` (duckdb or snowflake): every logged prediction of `name` with its outcome, if landed.

    One row per prediction: request_id, record_index, model_version, ts, outcome_key, inputs and outputs
    (JSON text), and the outcome with its time: the first outcome row within the horizon (`pick: first`)
    or the largest value (`pick: max`); NULL when none landed yet. `dialect` is the spec's SQL dialect, in
    which `feedback` is written. Raises ValueError when the outcome SQL does not parse.
    """
    from rscale.compiler.sql import transpile

    if not id_column:
        raise ValueError("feedback needs `features.id`: the key that requests carry and outcomes are found by")
    outcomes = transpile(feedback.outcomes_sql(id_column), dialect, warehouse).sql
    order = "o.outcome_time, o.outcome" if feedback.pick == "first" else "o.outcome DESC, o.outcome_time"
    join = _JOIN.format(
        table=predictions_table(name), id=id_column, order=order, horizon=feedback.horizon_seconds
    ).strip()
    body = transpile(join, "snowflake", warehouse).sql
    if not body.startswith("WITH "):
        raise ValueError(f"unexpected transpiled join for {warehouse}: {body[:40]!r}")
    return f"WITH rs_outcomes AS (\n{outcomes}\n),\n{body[len('WITH '):]}"


def landed_outcomes(joined: pa.Table, feedback: FeedbackSpec, now: datetime | None = None) -> pa.Table:
    """The joined predictions with `landed` (bool) and the outcome filled with `feedback.missing` where the
    horizon has passed with no outcome row. `now` is UTC (default: the clock)."""
    import pyarrow.compute as pc

    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    cutoff = now - timedelta(seconds=feedback.horizon_seconds)
    has = pc.is_valid(joined.column("outcome"))
    if feedback.missing is None or joined.num_rows == 0:
        landed = has
        outcome = joined.column("outcome")
    else:
        expired = pc.less_equal(joined.column("ts"), pa.scalar(cutoff, joined.schema.field("ts").type))
        landed = pc.or_(has, expired)
        fill = feedback.missing
        column = joined.column("outcome")
        if pa.types.is_null(column.type):
            column = column.cast(pa.float64() if isinstance(fill, (int, float)) else pa.string())
        outcome = pc.if_else(has, column, pa.scalar(fill).cast(column.type))
    out = joined.set_column(joined.schema.get_field_index("outcome"), "outcome", outcome)
    return out.append_column("landed", landed)


def create_outcomes_view(warehouse: Warehouse, name: str, sql: str) -> None:
    """(Re)define the view `<name>_outcomes` as the outcome join (creating an empty `<name>_predictions` before
    the first prediction), so a spec's query can read it from the first run on, e.g. to add served sessions
    and their outcomes to training.
    """
    if not warehouse.table_exists(predictions_table(name)):
        warehouse.append(predictions_table(name), PREDICTIONS_SCHEMA.empty_table())
    warehouse.execute(f"CREATE OR REPLACE VIEW {outcomes_view(name)} AS\n{sql}")


def spec_of(plan: Plan) -> Spec:
    """The validated spec a plan was compiled from (with its overrides), for the blocks that stay out of the
    plan: `feedback` and `monitor` are read at monitoring and ingest time, so changing a threshold or an
    outcome query never changes the plan's hash or invalidates cached training."""
    from rscale.compiler.load import load_file
    from rscale.compiler.overrides import apply, expand
    from rscale.compiler.validate import validate
    from rscale.paths import project_root

    path = Path(plan.spec_file)
    if not path.is_absolute() and not path.exists():
        path = project_root() / path
    doc = load_file(path)
    member = expand(list(plan.overrides))[0]
    tree, origin = apply(doc.tree, member.overrides)
    return validate(doc, tree, origin)


def prepare_feedback(warehouse: Warehouse, plan: Plan) -> int:
    """Before a run: ingest the prediction log (with the spec's retention) and (re)define `<name>_outcomes`."""
    from rscale.compiler.errors import SpecError

    try:
        spec = spec_of(plan)
    except SpecError as exc:
        log.warning("spec %s unreadable (%s): prediction logs ingested without its feedback settings", plan.spec_file, exc)
        return ingest_predictions(warehouse, plan.name)
    feedback = spec.feedback
    added = ingest_predictions(warehouse, plan.name, retention_s=feedback.retention_seconds if feedback else None)
    if feedback is not None:
        try:
            sql = outcome_join_sql(plan.name, feedback, plan.features.id or "", plan.data.dialect, plan.data.warehouse)
        except ValueError as exc:
            log.warning("no %s view: %s", outcomes_view(plan.name), exc)
            return added
        create_outcomes_view(warehouse, plan.name, sql)
    return added
