"""Run a plan's data checks in the warehouse, before anything is trained, and report them for people.

Each check arrives compiled to SQL (`CheckPlan.value_sql` returns one value, `sample_sql` up to five
offending rows), so the data never leaves the warehouse to be checked. The report is a pydantic model,
so ZenML stores it as JSON; `render()` shows it in the terminal.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from rich.table import Table

    from rscale.compiler.plan import CheckPlan
    from rscale.warehouses import Warehouse

JsonValue = Any  # None, bool, int, float, str, list or dict of these


class CheckResult(BaseModel):
    """One check's outcome: what it measured, whether it passed, and a few offending rows when it did not."""

    name: str
    type: str
    severity: Literal["error", "warn"]
    passed: bool
    value: JsonValue = Field(
        None, description="Failing rows; the row count for row_count; the newest time for freshness."
    )
    message: str
    samples: list[dict[str, JsonValue]] = Field(default_factory=list)
    error: str | None = Field(None, description="Why the check's SQL could not run, when it could not.")


class CheckReport(BaseModel):
    """Every check of a run. `failed` holds the error-severity failures, which stop the run."""

    results: list[CheckResult] = Field(default_factory=list)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and r.severity == "warn"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def render(self) -> Table:
        """A rich table: one row per check, then the first offending rows of each failure."""
        from rich.table import Table

        table = Table(title="data checks", title_justify="left", show_lines=False)
        table.add_column("check")
        table.add_column("type")
        table.add_column("result")
        table.add_column("details", overflow="fold")
        for result in self.results:
            status = _status(result)
            colour = {"pass": "green", "FAIL": "red", "warn": "yellow"}[status]
            details = result.message
            if result.samples:
                details += "\n" + "\n".join(_sample_line(row) for row in result.samples)
            table.add_row(result.name, result.type, f"[{colour}]{status}[/]", details)
        return table

    def render_text(self) -> str:
        """The same report as plain text (for errors and logs, where rich markup would be noise)."""
        lines = []
        for result in self.results:
            lines.append(f"  {_status(result):4}  {result.name} ({result.type}): {result.message}")
            lines.extend(f"          {_sample_line(row)}" for row in result.samples)
        return "\n".join(lines)


def run_checks(warehouse: Warehouse, checks: Sequence[CheckPlan]) -> CheckReport:
    """Run every check (all of them, not up to the first failure) and collect the results."""
    return CheckReport(results=[run_check(warehouse, check) for check in checks])


def run_check(warehouse: Warehouse, check: CheckPlan) -> CheckResult:
    spec = check.rule.get("spec", {})
    base = {"name": check.name, "type": check.type, "severity": check.severity}
    try:
        raw = warehouse.scalar(check.value_sql)
    except Exception as exc:  # a check that cannot run is a failed check, reported with the others
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CheckResult(**base, passed=False, message=f"could not run the check: {reason}", error=reason)
    if check.type == "row_count":
        passed, message = _row_count(int(raw or 0), check.rule)
    elif check.type == "freshness":
        passed, message = _freshness(raw, check.rule, spec.get("column", "the time column"))
    else:
        passed, message = _failing_rows(int(raw or 0), check.type, spec)
    samples: list[dict[str, JsonValue]] = []
    if not passed and check.sample_sql:
        try:
            samples = [
                {k: json_safe(v) for k, v in row.items()} for row in warehouse.query_arrow(check.sample_sql).to_pylist()
            ]
        except Exception as exc:  # samples are a courtesy; the verdict stands without them
            message += f" (could not fetch examples: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc})"
    return CheckResult(**base, passed=passed, value=json_safe(raw), message=message, samples=samples[:5])


def _row_count(count: int, rule: dict[str, Any]) -> tuple[bool, str]:
    low, high = rule.get("min"), rule.get("max")
    bounds = " and ".join(
        part
        for part in (
            (f"at least {low:,}" if low is not None else ""),
            (f"at most {high:,}" if high is not None else ""),
        )
        if part
    )
    passed = (low is None or count >= low) and (high is None or count <= high)
    rows = f"{count:,} row{'s' if count != 1 else ''}"
    if passed:
        return True, rows + (f" ({bounds})" if bounds else "")
    return False, f"{rows}, expected {bounds}"


def _failing_rows(count: int, kind: str, spec: dict[str, Any]) -> tuple[bool, str]:
    rows = f"{count:,} row{'s' if count != 1 else ''}"
    have = "has" if count == 1 else "have"
    columns = spec.get("columns") or []
    column = spec.get("column", "")
    if kind == "not_null":
        where = " or ".join(columns)
        return count == 0, f"{rows} {have} NULL in {where}" if count else f"no NULL in {', '.join(columns)}"
    if kind == "unique":
        key = ", ".join(columns)
        if count == 0:
            return True, f"({key}) is unique"
        return False, f"{count:,} value{'s' if count != 1 else ''} of ({key}) appear more than once"
    if kind == "accepted_values":
        allowed = ", ".join(str(v) for v in spec.get("values", []))
        if count == 0:
            return True, f"every {column} is one of {allowed}"
        return False, f"{rows} {have} {column} outside [{allowed}]"
    if kind == "range":
        low, high = spec.get("min"), spec.get("max")
        span = f"[{'-inf' if low is None else _number(low)}, {'inf' if high is None else _number(high)}]"
        if count == 0:
            return True, f"every {column} is in {span}"
        return False, f"{rows} {have} {column} outside {span}"
    if kind == "sql":
        return count == 0, f"the check query returned {rows}" if count else "the check query returned no rows"
    return count == 0, f"{rows} failed"


def _freshness(newest: Any, rule: dict[str, Any], column: str) -> tuple[bool, str]:
    limit = float(rule["max_age_hours"])
    if newest is None:
        return False, f"no rows, so no newest {column}"
    if isinstance(newest, str):
        newest = datetime.fromisoformat(newest)
    if isinstance(newest, date) and not isinstance(newest, datetime):
        newest = datetime.combine(newest, time())
    now = datetime.fromisoformat(rule["now"]) if rule.get("now") else datetime.now(UTC)
    age_hours = (_as_utc(now) - _as_utc(newest)).total_seconds() / 3600
    stamp = newest.isoformat(sep=" ")
    if age_hours <= limit:
        return True, f"newest {column} is {age_hours:,.1f} hours old ({stamp}; at most {_number(limit)})"
    return False, f"newest {column} is {age_hours:,.1f} hours old ({stamp}), more than {_number(limit)}"


def _as_utc(moment: datetime) -> datetime:
    # A TIMESTAMP without time zone is taken as UTC, as warehouses store event times.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _number(value: float) -> str:
    return f"{value:g}"


def _status(result: CheckResult) -> str:
    if result.passed:
        return "pass"
    return "FAIL" if result.severity == "error" else "warn"


def _sample_line(row: dict[str, JsonValue]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in row.items())
    return text if len(text) <= 160 else text[:157] + "..."


def json_safe(value: Any) -> JsonValue:
    """A value from a warehouse row as plain JSON: times as ISO text, decimals as floats, NaN as None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return json_safe(float(value))
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)
