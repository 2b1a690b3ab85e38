"""Ingest: rows/s from the warehouse to training tensors, and peak memory against the Arrow table's size.

rscale's path is what a run does between the query and the first batch: `connect(...).query_arrow(sql)`,
then `Preprocessor.fit_transform` (fit and encode in one pass over each categorical column: standardised
float32 numerics, vocabulary codes, float32 target; the same state and tensors as `fit` then `transform`).
The hand-written lower bound is DuckDB's own `con.sql(q).to_arrow_table()` followed by zero-copy views
(`torch.from_numpy` per chunk; the string column as dictionary codes). Each side runs in a fresh child
process; its RSS high-water mark, reset just before the query, over its RSS then is its memory cost.
Goals (DESIGN.md): >= 0.8 of the hand-written rows/s; peak <= 2x the Arrow table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Report

GOAL_SPEED = 0.8
GOAL_PEAK = 2.0
REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["n_views", "n_carts", "n_categories", "duration_s", "avg_price", "device", "purchased"]
QUERY = f"SELECT {', '.join(COLUMNS)} FROM sessions"


def make_warehouse(path: Path, rows: int) -> None:
    """A DuckDB file with `rows` sessions shaped like specs/conversion.yaml's features (no nulls)."""
    import duckdb

    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("SELECT setseed(0.5)")
        con.execute(f"""
            CREATE TABLE sessions AS
            SELECT i::VARCHAR AS session_id,
                   floor(random() * 20)::DOUBLE AS n_views,
                   floor(random() * 4)::DOUBLE AS n_carts,
                   floor(1 + random() * 5)::DOUBLE AS n_categories,
                   random() * 3000 AS duration_s,
                   random() * 200 AS avg_price,
                   (['mobile', 'desktop', 'tablet'])[1 + floor(random() * 3)::INT] AS device,
                   (random() < 0.2)::BIGINT AS purchased
            FROM range({rows}) AS t(i)
        """)


def _status_bytes(field: str) -> int:
    """A `/proc/self/status` memory figure (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Start this process's RSS high-water mark (VmHWM) afresh at its current RSS (Linux >= 4.0).

    Not `getrusage(...).ru_maxrss`: Linux carries the parent's high-water mark into a child at exec
    (subprocess starts children with vfork, and exec keeps the larger of the two), so a child of a parent
    that once held 1 GB reports at least 1 GB, whatever the child does. In `python -m bench all` the parent
    had run the training benchmarks first, and both sides read about 4.4x the table from that alone.
    """
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _duckdb_settings() -> dict[str, str]:
    """The DuckDB settings that decide its working memory during the query, as the child's connection has them."""
    import duckdb

    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('threads', 'memory_limit', 'preserve_insertion_order', 'arrow_output_version', 'allocator_flush_threshold')"
        ).fetchall()
    return {"version": duckdb.__version__, **{name: str(value) for name, value in rows}}


def child(side: str, db: Path) -> dict:
    """One measurement in this (fresh) process: time from query to tensors, and peak RSS over the start."""
    import duckdb  # noqa: F401  (imports are not what is measured)
    import pyarrow as pa
    import pyarrow.compute as pc
    import torch

    torch.set_num_threads(1)
    from rscale.compiler.stack import DuckDBWarehouse
    from rscale.models.preprocess import Preprocessor
    from rscale.warehouses import connect

    plan = _plan()

    def ingest(query: str) -> tuple[pa.Table, dict[str, float], dict[str, list[int]]]:
        phases: dict[str, float] = {}
        started = time.perf_counter()
        if side == "rscale":
            with connect(DuckDBWarehouse(path=str(db)), read_only=True) as warehouse:
                table = warehouse.query_arrow(query)
            phases["query"] = time.perf_counter() - started
            _preprocessor, tensors = Preprocessor.fit_transform(plan, table)
            phases["fit_transform"] = time.perf_counter() - started - phases["query"]
            return table, phases, {name: list(t.shape) for name, t in tensors.items()}
        with duckdb.connect(str(db), read_only=True) as con:
            table = con.sql(query).to_arrow_table()
        phases["query"] = time.perf_counter() - started
        views: dict[str, list[torch.Tensor]] = {}
        for name in table.column_names:
            chunks = table[name].chunks
            if pa.types.is_string(table.schema.field(name).type):
                chunks = [pc.dictionary_encode(chunk).indices for chunk in chunks]
            views[name] = [torch.from_numpy(chunk.to_numpy(zero_copy_only=True)) for chunk in chunks]
        phases["views"] = time.perf_counter() - started - phases["query"]
        return table, phases, {name: [sum(len(v) for v in vs)] for name, vs in views.items()}

    ingest(QUERY + " LIMIT 2000")  # first calls of pyarrow kernels and DuckDB's catalogue: not what is measured
    _reset_peak()  # the peak of the imports and the warm-up is not what is measured
    before = _status_bytes("VmRSS")
    cpu_started, started = time.process_time(), time.perf_counter()
    table, phases, shapes = ingest(QUERY)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "side": side,
        "rows": table.num_rows,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "phases": phases,
        "table_bytes": table.nbytes,
        "peak_over_start_bytes": _status_bytes("VmHWM") - before,
        "duckdb": _duckdb_settings(),
        "shapes": shapes,
    }


def _plan():  # type: ignore[no-untyped-def]
    from rscale.compiler.compilation import compile_spec

    return compile_spec(REPO / "specs" / "conversion.yaml", [], offline=True).plans[0]


def measure(side: str, db: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest", side, str(db)], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ingest child ({side}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool, work: Path) -> Report:
    rows = 100_000 if quick else 3_000_000
    repeats = 1 if quick else 3
    db = work / "ingest.duckdb"
    make_warehouse(db, rows)
    report = Report("ingest", "Ingest: warehouse -> training tensors, rscale vs DuckDB to_arrow_table + zero-copy",
                    quick, settings={"rows": rows, "repeats": repeats, "query": QUERY,
                                     "process": "fresh child per measurement"})
    results: dict[str, list[dict]] = {"rscale": [], "duckdb": []}
    if not quick:
        measure("duckdb", db)  # warm the OS file cache
    for repeat in range(repeats):
        for side in (("duckdb", "rscale") if repeat % 2 == 0 else ("rscale", "duckdb")):
            results[side].append(measure(side, db))
    table_bytes = results["duckdb"][0]["table_bytes"]
    for side, label in (("rscale", "rscale: query_arrow + fit_transform"),
                        ("duckdb", "hand-written: to_arrow_table + zero-copy views")):
        runs = results[side]
        report.row(f"{label}", "rows/s", [r["rows"] / r["seconds"] for r in runs])
        report.row(f"{side}: rows per CPU second", "rows/s", [r["rows"] / r["cpu_seconds"] for r in runs])
        for phase in runs[0]["phases"]:
            report.row(f"{side}: {phase}", "s", [r["phases"][phase] for r in runs])
        report.row(f"{side}: peak RSS over start", "x table", [r["peak_over_start_bytes"] / table_bytes for r in runs],
                   bytes=[r["peak_over_start_bytes"] for r in runs])
    speed = report.median("rscale: query_arrow + fit_transform") / report.median(
        "hand-written: to_arrow_table + zero-copy views")
    report.compare("rows/s vs hand-written", speed, GOAL_SPEED)
    # CPU time (every thread, user + system) is what the work costs; on these shared cores wall time also
    # measures the neighbours, so this ratio is the one to read when the load average is above 1
    report.compare(
        "rows per CPU second vs hand-written",
        report.median("rscale: rows per CPU second") / report.median("duckdb: rows per CPU second"),
        None,
    )
    report.compare("rscale peak memory / Arrow table", report.median("rscale: peak RSS over start"), GOAL_PEAK,
                   unit="x table", higher_is_better=False)
    report.compare("hand-written peak memory / Arrow table", report.median("duckdb: peak RSS over start"), None,
                   unit="x table", higher_is_better=False)
    report.extra["table_bytes"] = table_bytes
    report.extra["duckdb"] = results["duckdb"][0]["duckdb"]
    report.extra["tensor_shapes"] = results["rscale"][0]["shapes"]
    report.notes.append(f"Arrow table: {rows:,} rows x {len(COLUMNS)} columns = {table_bytes / 2**20:.1f} MiB")
    report.notes.append("peak = the child's RSS high-water mark (VmHWM, reset just before the query) minus its RSS "
                        "then; it includes DuckDB's working memory and every intermediate copy. Not ru_maxrss, "
                        "which a child inherits from its parent's peak at exec")
    report.notes.append("DuckDB: " + ", ".join(f"{k} {v}" for k, v in report.extra["duckdb"].items()))
    report.notes.append("rscale's tensors are contiguous float32/int64 matrices ready for batching; the "
                        "hand-written side stops at per-chunk views, the cheapest possible lower bound")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one ingest measurement in a fresh process (prints JSON)")
    parser.add_argument("side", choices=["rscale", "duckdb"])
    parser.add_argument("db", type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(child(args.side, args.db)))


if __name__ == "__main__":
    main()

