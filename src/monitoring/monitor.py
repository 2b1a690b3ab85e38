"""`rs monitor`: gather what the deployed model sees and how it does, and check the spec's thresholds.

Sources, all local to the project or in its warehouse:
- the endpoint's record (`.rs/serving/<name>.json`) names the deployed model package and version;
- ZenML's model registry gives that version's test metric and its training split (`monitoring.versions`);
- the prediction log, ingested into `<name>_predictions` first (idempotent), gives the served requests and
  responses in the window, joined with their outcomes by the spec's `feedback`;
- the raw log lines give latency and errors where the endpoint records them (`latency_ms`, `status`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field

from rscale.compiler.plan import Plan
from rscale.compiler.spec import Spec
from rscale.compiler.spec.monitor import MONITOR_ALARM_EXIT_CODE, MonitorSpec
from rscale.errors import ConfigurationError
from rscale.monitoring import drift
from rscale.monitoring.live import live_metric_name, score

__all__ = ["MONITOR_ALARM_EXIT_CODE", "MonitorReport", "run_monitor"]

PREDICTION_SAMPLE = 2000  # training rows the deployed model predicts on, for the reference prediction distribution
BUCKETS = (60, 300, 900, 3600, 6 * 3600, 86400)  # time-series bucket sizes, seconds: the first giving <= 24 points


class InputDrift(BaseModel):
    name: str
    type: str
    psi: float | None = None
    oov_share: float | None = None  # share of served values the model maps to <oov>
    train_oov_share: float | None = None  # the same share on the training split


class Threshold(BaseModel):
    """One check of a `monitor:` threshold: the figure, the limit and whether it was crossed."""

    check: str
    value: float | None
    limit: float
    crossed: bool
    detail: str


class SeriesPoint(BaseModel):
    start: datetime
    value: float | None
    count: int


class MonitorReport(BaseModel):
    """Everything `rs monitor` found, as written to build/<name>/monitor.json."""

    name: str
    since: datetime
    until: datetime
    endpoint_version: str | None = None
    registered_version: str | None = None
    predictions: int = 0
    requests: int = 0
    other_versions: int = 0  # predictions in the window served by other model versions (not judged)
    live_metric: str | None = None
    test_value: float | None = None
    live_value: float | None = None
    outcomes: int = 0
    live_series: list[SeriesPoint] = Field(default_factory=list)
    volume_series: list[SeriesPoint] = Field(default_factory=list)
    drift: list[InputDrift] = Field(default_factory=list)
    prediction_psi: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    error_rate: float | None = None
    checks: list[Threshold] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def alarms(self) -> list[Threshold]:
        return [c for c in self.checks if c.crossed]

    @property
    def exit_code(self) -> int:
        return MONITOR_ALARM_EXIT_CODE if self.alarms else 0


def run_monitor(
    plan: Plan,
    spec: Spec,
    *,
    since_s: float,
    now: datetime | None = None,
    package_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> MonitorReport:
    """Gather the report for the endpoint of `plan` over the last `since_s` seconds and check the thresholds."""
    from rscale.data.feedback import ingest_predictions, landed_outcomes, outcome_join_sql, predictions_table
    from rscale.serving.endpoint import latest_package, read_manifest, read_state
    from rscale.warehouses import connect

    if spec.feedback is not None and not plan.features.id:
        raise ConfigurationError(
            "`feedback:` finds a prediction's outcome by its key, but the spec has no `features.id`",
            fix="set features.id to the key column requests carry (e.g. session_id), or remove `feedback:`",
        )
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    since = now - timedelta(seconds=since_s)
    report = MonitorReport(name=plan.name, since=since, until=now)
    state = read_state(plan.name) or {}
    package = package_dir or (Path(state["package_dir"]) if state.get("package_dir") else latest_package(plan.name))
    if package is None:
        raise ConfigurationError(
            f"nothing to monitor: `{plan.name}` has no endpoint and no model package",
            fix=f"train and deploy it first: rs run {plan.spec_file}",
        )
    manifest = read_manifest(package)
    report.endpoint_version = str(manifest.get("version"))

    progress("ingesting the prediction log")
    table = predictions_table(plan.name)
    retention = spec.feedback.retention_seconds if spec.feedback else None
    with connect(plan.stack.warehouse) as warehouse:
        ingest_predictions(warehouse, plan.name, retention_s=retention)
        if not warehouse.table_exists(table):
            report.notes.append(f"no predictions logged yet (no table {table})")
            return report
        if spec.feedback is not None:
            try:
                sql = outcome_join_sql(
                    plan.name, spec.feedback, plan.features.id or "", plan.data.dialect, plan.data.warehouse
                )
            except ValueError as exc:
                raise ConfigurationError(
                    f"{plan.spec_file}: `feedback:` does not compile: {exc}",
                    fix=f"fix the outcome SQL; it is written in data.dialect ({plan.data.dialect})",
                ) from None
        else:
            sql = f"SELECT request_id, record_index, model_version, ts, inputs, outputs FROM {table}"
            report.notes.append("the spec has no `feedback:` block, so there is no live metric")
        served = warehouse.query_arrow(
            f"SELECT * FROM (\n{sql}\n) AS served WHERE ts >= CAST('{since:%Y-%m-%d %H:%M:%S}' AS TIMESTAMP)"
        )
    versions = served.column("model_version").to_pylist()
    mine = pa.array([v == report.endpoint_version for v in versions], pa.bool_())
    report.other_versions = len(versions) - sum(mine.to_pylist())
    served = served.filter(mine)
    report.predictions = served.num_rows
    report.requests = len(set(served.column("request_id").to_pylist()))
    report.volume_series = _series(served.column("ts").to_pylist(), [None] * served.num_rows, since, now, None)

    registered = _registered(plan.name, report.endpoint_version, report, progress)
    metric = live_metric_name(list(plan.evaluate.metrics))
    report.live_metric = metric
    if registered is not None and metric is not None:
        report.test_value = registered[0].metrics.get(metric)
    if spec.feedback is not None and metric is not None and served.num_rows:
        labelled = landed_outcomes(served, spec.feedback, now.replace(tzinfo=UTC))
        landed = labelled.filter(labelled.column("landed"))
        report.outcomes = landed.num_rows
        outputs = landed.column("outputs").to_pylist()
        outcomes = landed.column("outcome").to_pylist()
        report.live_value = _finite(score(metric, outputs, outcomes)) if outputs else None
        report.live_series = _series(
            landed.column("ts").to_pylist(), list(zip(outputs, outcomes, strict=True)), since, now, metric
        )

    records = [json.loads(text) for text in served.column("inputs").to_pylist()]
    train = _training_split(registered) if registered is not None else None
    if train is None:
        report.notes.append("the deployed version's training split was not found in the model registry: no drift")
    elif records:
        progress("comparing served inputs with the training split")
        preprocess = json.loads((package / "preprocess.json").read_text())
        report.drift = _input_drift(plan, spec.monitor, train, records, preprocess.get("vocabularies", {}))
        report.prediction_psi = _prediction_drift(
            package, plan, train, served.column("outputs").to_pylist(), spec.monitor
        )
    report.latency_ms_p50, report.latency_ms_p99, report.error_rate = _traffic(plan.name, since)
    report.checks = _checks(report, spec.monitor)
    return report


def _registered(name: str, version: str | None, report: MonitorReport, progress: Callable[[str], None]) -> Any:
    from rscale.monitoring.versions import version_of_package

    if version is None:
        return None
    progress("reading the deployed version from the model registry")
    found = version_of_package(name, version)
    if found is None:
        report.notes.append(f"package {version} is not a registered model version: no test metric to compare with")
        return None
    report.registered_version = str(found[0])
    return found


def _training_split(registered: Any) -> pa.Table | None:
    """The deployed version's training rows: the train part of its load step's `examples` (the table and
    its split's row indices), or a `train` table linked by a version from before that artifact existed."""
    from rscale.data.split import SplitTable
    from rscale.monitoring.versions import load_artifact

    examples = load_artifact(registered[1], "examples")
    if isinstance(examples, SplitTable):
        return examples.part("train")
    loaded = load_artifact(registered[1], "train")
    return loaded if isinstance(loaded, pa.Table) else None


def _input_drift(
    plan: Plan, thresholds: MonitorSpec, train: pa.Table, records: list[dict[str, Any]], vocabularies: dict[str, Any]
) -> list[InputDrift]:
    out = []
    for feature in plan.features.inputs:
        name, kind = feature.name, feature.type
        if name not in train.column_names:
            continue
        reference = train.column(name).to_pylist()
        live = [record.get(name) for record in records]
        row = InputDrift(name=name, type=kind)
        if kind == "numeric":
            row.psi = _finite(drift.numeric_psi(reference, live, thresholds.bins))
        elif kind in ("categorical", "binary"):
            row.psi = _finite(drift.categorical_psi(reference, live))
        elif kind == "sequence":
            reference, live = drift.tokens(reference), drift.tokens(live)
            row.psi = _finite(drift.categorical_psi(reference, live))
        else:
            continue
        vocabulary = vocabularies.get(name)
        if kind in ("categorical", "sequence") and vocabulary is not None:
            known = {str(v) for v in vocabulary}
            row.oov_share = _finite(drift.oov_share(live, known))
            row.train_oov_share = _finite(drift.oov_share(reference, known))
        out.append(row)
    return out


def _prediction_drift(
    package: Path, plan: Plan, train: pa.Table, outputs: list[str], thresholds: MonitorSpec
) -> float | None:
    """PSI of the served predictions against the deployed model's predictions on a sample of its training rows:
    the top item for rankings, the probability for binary classifiers."""
    from rscale.models.package import ModelPackage

    model = ModelPackage.load(package)
    sample = train.slice(0, PREDICTION_SAMPLE)
    names = [f.name for f in plan.features.inputs]
    reference = model.predict([{k: row.get(k) for k in names} for row in sample.select(names).to_pylist()])
    live = [json.loads(text) for text in outputs]
    if reference and "items" in reference[0]:
        return _finite(drift.categorical_psi([r["items"][0] for r in reference], [r["items"][0] for r in live]))
    if reference and "probability" in reference[0]:
        return _finite(
            drift.numeric_psi([r["probability"] for r in reference], [r["probability"] for r in live], thresholds.bins)
        )
    return None


def _traffic(name: str, since: datetime) -> tuple[float | None, float | None, float | None]:
    """Latency percentiles and error rate from the raw log lines in the window, where the endpoint records
    `latency_ms` and `status` on its lines (None when it does not).

    Both log formats count once per request: a line per request (`"records": N`, since 2026-12-02) is one
    request; of the per-record lines earlier versions wrote (`"index": i`, each repeating its request's
    latency), only the first (index 0) counts. Before, a batch of N records weighed N times in the
    percentiles; a latency is the request's, so once per request is the right weight."""
    import numpy as np

    from rscale.paths import predictions_dir

    latencies: list[float] = []
    statuses: list[int] = []
    for path in sorted(predictions_dir(name).glob("*.jsonl")):
        with path.open("rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    ts = datetime.fromisoformat(record["ts"]).astimezone(UTC).replace(tzinfo=None)
                except (ValueError, KeyError, TypeError):
                    continue
                if ts < since or record.get("index", 0) != 0:  # a per-record line after its request's first
                    continue
                if isinstance(record.get("latency_ms"), (int, float)):
                    latencies.append(float(record["latency_ms"]))
                if isinstance(record.get("status"), int):
                    statuses.append(int(record["status"]))
    p50 = float(np.percentile(latencies, 50)) if latencies else None
    p99 = float(np.percentile(latencies, 99)) if latencies else None
    errors = sum(1 for s in statuses if s >= 500) / len(statuses) if statuses else None
    return p50, p99, errors


def _series(
    times: list[datetime], values: list[Any], since: datetime, until: datetime, metric: str | None
) -> list[SeriesPoint]:
    """Points per time bucket: the metric of the bucket's (output, outcome) pairs, or its count when no metric."""
    if not times:
        return []
    first, last = min(times), max(times)
    span = max((last - first).total_seconds(), 1.0)
    size = next((b for b in BUCKETS if span / b <= 24), BUCKETS[-1])
    buckets: dict[int, list[Any]] = {}
    for ts, member in zip(times, values, strict=True):
        buckets.setdefault(int(ts.timestamp() // size), []).append(member)
    points = []
    for key in sorted(buckets):
        members = buckets[key]
        value: float | None = float(len(members))
        if metric is not None:
            value = _finite(score(metric, [m[0] for m in members], [m[1] for m in members]))
        points.append(
            SeriesPoint(
                start=datetime.fromtimestamp(key * size, UTC).replace(tzinfo=None), value=value, count=len(members)
            )
        )
    return points


def _checks(report: MonitorReport, limits: MonitorSpec) -> list[Threshold]:
    checks = []
    for row in report.drift:
        if row.psi is not None:
            checks.append(
                Threshold(
                    check=f"psi:{row.name}",
                    value=row.psi,
                    limit=limits.max_psi,
                    crossed=row.psi > limits.max_psi,
                    detail=f"input `{row.name}` PSI {row.psi:.3f} (max_psi {limits.max_psi})",
                )
            )
        if row.oov_share is not None:
            rise = row.oov_share - (row.train_oov_share or 0.0)
            checks.append(
                Threshold(
                    check=f"oov:{row.name}",
                    value=rise,
                    limit=limits.max_oov_share,
                    crossed=rise > limits.max_oov_share,
                    detail=f"input `{row.name}` out-of-vocabulary {row.oov_share:.1%} served vs "
                    f"{row.train_oov_share or 0:.1%} in training (max rise {limits.max_oov_share:.0%})",
                )
            )
    if report.prediction_psi is not None:
        checks.append(
            Threshold(
                check="psi:prediction",
                value=report.prediction_psi,
                limit=limits.max_prediction_psi,
                crossed=report.prediction_psi > limits.max_prediction_psi,
                detail=f"prediction distribution PSI {report.prediction_psi:.3f} (max_prediction_psi "
                f"{limits.max_prediction_psi})",
            )
        )
    if report.live_value is not None and report.test_value and report.outcomes >= limits.min_outcomes:
        drop = (report.test_value - report.live_value) / abs(report.test_value)
        checks.append(
            Threshold(
                check=f"live:{report.live_metric}",
                value=drop,
                limit=limits.max_metric_drop,
                crossed=drop > limits.max_metric_drop,
                detail=f"live {report.live_metric} {report.live_value:.4f} on {report.outcomes} outcomes vs test "
                f"{report.test_value:.4f}: {drop:.1%} below (max {limits.max_metric_drop:.0%})",
            )
        )
    if report.error_rate is not None:
        checks.append(
            Threshold(
                check="errors",
                value=report.error_rate,
                limit=limits.max_error_rate,
                crossed=report.error_rate > limits.max_error_rate,
                detail=f"error rate {report.error_rate:.2%} (max {limits.max_error_rate:.2%})",
            )
        )
    return checks


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None
