"""A first spec for a new use case, written from a profiled table (`rs init NAME --table T --target C`).

The spec is short and commented: `inputs: all` (types inferred at compile time and frozen into the plan),
checks suggested from the data (a row count, not-null on the target, accepted values for low-cardinality
columns), the task's metrics with its strongest fair baseline and a gate, and a split that fits the data
(by time when there is a time column, else at random). No printing here: the CLI writes and reports.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rscale.compiler.contract import INTEGER, STRING, TEMPORAL, family
from rscale.compiler.defaults import DEFAULT_METRICS
from rscale.compiler.inference import infer_target, infer_type, is_identifier
from rscale.compiler.spec.evaluate import default_baselines
from rscale.compiler.spec.tasks import target_kind, task_config
from rscale.warehouses.profile import LOW_CARDINALITY, ColumnProfile

ID_NAME = re.compile(r"(^|_)(id|key|uuid)$", re.IGNORECASE)


@dataclass
class Scaffold:
    """What `rs init` found, and the spec text it writes."""

    text: str
    task: str
    time_column: str | None
    id_column: str | None
    inputs: Counter[str] = field(default_factory=Counter)


def scaffold_spec(
    name: str, query: str, target: str, profiles: list[ColumnProfile], *, source: str, dialect: str = "snowflake"
) -> Scaffold:
    """A spec for predicting `target` from the other columns of `query`'s profiled result."""
    by_name = {p.name.lower(): p for p in profiles}
    target_profile = by_name[target.lower()]
    target_name = target_profile.name
    time_column = next(
        (p.name for p in profiles if family(p.type) in TEMPORAL and p.name != target_name and p.nulls == 0), None
    )
    id_column = next(
        (p.name for p in profiles if p.name != target_name and ID_NAME.search(p.name) and _unique(p)), None
    )
    kind, _ = infer_target(target_profile, "tabular")
    # the task registry decides, as it does for a written spec: a tabular spec's default task is classification,
    # and a kind of another task may claim the target (regression claims a numeric one)
    task = task_config(target_kind("classification", kind or "")).task
    metrics = [m.format(k=10) for m in DEFAULT_METRICS[task]]
    baseline = "[" + ", ".join(default_baselines(task)) + "]"
    inputs: Counter[str] = Counter()
    for profile in profiles:
        if profile.name in (target_name, time_column, id_column):
            continue
        feature, _ = infer_type(profile)
        if feature is not None and feature in ("numeric", "categorical", "binary") and not (
            feature == "categorical" and is_identifier(profile)
        ):
            inputs[feature] += 1
    rows = target_profile.rows
    lines = [
        "# yaml-language-server: $schema=../schema/spec.schema.json",
        f"# {name}: predict `{target_name}` from the other columns of {source}. Written by `rs init`; edit freely.",
        "spec_version: 1",
        f"name: {name}",
        "data:",
        f"  query: {_scalar(query)}",
    ]
    if dialect != "snowflake":
        lines.append(f"  dialect: {dialect}")
    if time_column:
        lines.append(f"  time_column: {time_column}")
    lines += ["checks:                 # suggested from the data as it is today"]
    lines.append(f"  - {{type: row_count, min: {max(1, rows // 2)}}}   # half of today's {rows:,} rows")
    lines.append(f"  - {{type: not_null, columns: [{', '.join(c for c in (target_name, id_column) if c)}]}}")
    for profile in profiles:
        if profile.name in (time_column, id_column) or not _few_values(profile):
            continue
        values = ", ".join(_flow(v) for v in profile.values or [])
        lines.append(f"  - {{type: accepted_values, column: {profile.name}, values: [{values}]}}")
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(inputs.items())) or "none yet"
    lines += ["features:"]
    if id_column:
        lines.append(f"  id: {id_column}")
    lines += [
        f"  inputs: all            # every other column; today {summary} (`rs compile --explain` says why)",
        f"  target: {target_name}         # {kind}: a {task} task",
        f"split: {{by: {'time' if time_column else 'random'}}}"
        + ("       # oldest rows train, newest test" if time_column else "     # no time column: seeded random split"),
        "model: {type: tabular}  # an MLP over numeric, categorical and binary columns",
        "evaluate:",
        f"  metrics: [{', '.join(metrics)}]",
        f"  baseline: {baseline}     # fair baselines: the model must beat the strongest to ship",
        f"  gate: {{metric: {metrics[0]}, min_lift: 0.0}}",
    ]
    return Scaffold("\n".join(lines) + "\n", task, time_column, id_column, inputs)


def _unique(profile: ColumnProfile) -> bool:
    filled = profile.rows - profile.nulls
    return filled > 0 and profile.distinct == filled


def _few_values(profile: ColumnProfile) -> bool:
    """A column whose handful of values are worth pinning: strings, booleans and integers, not measurements."""
    kind = family(profile.type)
    return bool(profile.values) and len(profile.values or []) <= LOW_CARDINALITY and (
        kind in STRING or kind in INTEGER or kind in ("BOOLEAN", "BOOL")
    )


def _flow(value: Any) -> str:
    """A value as YAML flow text: numbers and booleans bare, strings quoted when YAML would misread them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    return text if re.fullmatch(r"[A-Za-z_][\w .-]*", text) and text.lower() not in (
        "true", "false", "yes", "no", "null", "on", "off"
    ) else json.dumps(text)


def _scalar(query: str) -> str:
    """The query as a YAML scalar: plain when it is one simple line, else a block."""
    query = query.strip()
    if "\n" not in query and ": " not in query and " #" not in query and not re.match(r"[-?:,\[\]{}#&*!|>'\"%@`]", query):
        return query
    return "|\n" + "\n".join("    " + line for line in query.splitlines())
