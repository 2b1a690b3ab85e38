"""Evaluation: the model and its baselines on the test split, and the gate that decides deployment.

Every baseline the spec names (or the task's defaults, `evaluate.baseline` left out) is fitted on train
and scored on test; the gate compares the model with the STRONGEST of them on the gate's metric.

The gate's rule: for higher-is-better metrics the model must reach baseline + |baseline| * min_lift
(= baseline * (1 + min_lift) for the usual non-negative metrics); for lower-is-better ones (log_loss,
rmse, mae) it must reach baseline - |baseline| * min_lift. The lift (model minus baseline, sign-flipped
for lower-is-better metrics, so positive is always better) comes with a paired bootstrap interval: the
test rows are resampled `gate.resamples` times (seeded by train.seed), model and baseline are scored on
the same resampled rows, and the central interval of the lifts is reported (Efron & Tibshirani's
percentile interval; at `gate.confidence`, else 0.95). With `gate.confidence` set, the model deploys only
when that interval's lower end clears the required lift. Warnings say when the split is too small to tell
the lift from the required one, or the baseline is at the metric's ceiling.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

from rscale.compiler.spec.evaluate import (
    BASELINES,
    best_possible,
    higher_is_better,
    metric_task,
    reaches,
    required_value,
)
from rscale.compiler.spec.tasks import stricter_metrics
from rscale.models import metrics as metric_functions
from rscale.models.champion import ChampionDecision
from rscale.models.metrics import RowOutputs

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

EVAL_BATCH = 4096
REPORTED_CONFIDENCE = 0.95  # the interval's level when the gate does not set one
CEILING_GAP = 0.005  # a baseline this close to the metric's best value leaves no room to show a lift


class LiftInterval(BaseModel):
    """The central bootstrap interval of the model's lift over the strongest baseline (positive = better)."""

    confidence: float
    low: float
    high: float
    resamples: int
    rows: int
    sessions: int | None = Field(
        None, description="Next-item ranking: the test sessions resampled (clusters of `rows` next-item positions)."
    )


class GateDecision(BaseModel):
    passed: bool
    metric: str | None
    model_value: float | None
    baseline_value: float | None
    required_value: float | None
    reason: str
    baseline: str | None = Field(None, description="The strongest baseline on the gate metric, compared with.")
    lift: float | None = Field(None, description="Model minus baseline; sign-flipped for lower-is-better metrics.")
    required_lift: float | None = None
    interval: LiftInterval | None = None
    confidence: float | None = Field(None, description="gate.confidence: the interval's lower end must clear.")
    warnings: list[str] = Field(default_factory=list)


class Evaluation(BaseModel):
    """The evaluate step's record, read by the register and deploy steps and by `rs run`'s outcome."""

    metrics: dict[str, float]
    baseline: str = Field(description="The strongest baseline (on the gate metric), or none.")
    baseline_metrics: dict[str, float] = Field(description="The strongest baseline's metrics.")
    baselines: dict[str, dict[str, float]] = Field(default_factory=dict, description="Every baseline's metrics.")
    baseline_seconds: dict[str, float] = Field(default_factory=dict, description="Fit and score time per baseline.")
    gate: GateDecision
    test_rows: int
    warnings: list[str] = Field(default_factory=list, description="Baselines skipped, and the gate's warnings.")
    champion: ChampionDecision | None = Field(
        None, description="The production model compared with this one; None when the gate did not pass."
    )
    tracker_errors: list[str] = Field(
        default_factory=list, description="What the tracker failed to record in the train and evaluate steps."
    )


def evaluate(package_dir: str | Path, plan: Plan, train: pa.Table, test: pa.Table) -> Evaluation:
    """Score the package and the plan's baselines on `test` (baselines fitted on `train`), then apply the gate."""
    from rscale.models.baselines import available, fit_baseline
    from rscale.models.package import ModelPackage

    names = list(plan.evaluate.metrics)
    package = ModelPackage.load(package_dir)
    scored, sessions = evaluation_rows(package.preprocessor, test)
    model_outputs = package_outputs(package, scored)
    metrics = metric_functions.metrics_of(names, model_outputs)
    warnings: list[str] = []
    outputs: dict[str, RowOutputs] = {}
    scores: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    listed = plan.evaluate.baseline is not None
    for name in plan.evaluate.baseline_names(plan.task):
        if not listed and not available(name):
            config = BASELINES.entry(name).config
            warnings.append(
                f"baseline {name} skipped: `{config.optional_package}` is not installed "  # type: ignore[attr-defined]
                f"(pip install {config.distribution}: rscale depends on it)"  # type: ignore[attr-defined]
            )
            continue
        started = time.perf_counter()
        outputs[name] = fit_baseline(name, train, plan).outputs(scored)  # the model's rows, positions included
        scores[name] = metric_functions.metrics_of(names, outputs[name])
        seconds[name] = time.perf_counter() - started
    gate_metric = plan.evaluate.gate.metric if plan.evaluate.gate else names[0]
    strongest = strongest_baseline(gate_metric, scores)
    lifts = None
    if plan.evaluate.gate is not None and strongest is not None and gate_metric in metrics:
        lifts = paired_lifts(
            gate_metric,
            model_outputs,
            outputs[strongest],
            plan.evaluate.gate.resamples,
            int(plan.train.seed),
            sessions,
        )
    gate = decide_gate(
        plan.evaluate.gate,
        metrics,
        strongest or "none",
        scores.get(strongest or "", {}),
        lifts,
        len(model_outputs),
        None if sessions is None else test.num_rows,
    )
    return Evaluation(
        metrics=metrics,
        baseline=strongest or "none",
        baseline_metrics=scores.get(strongest or "", {}),
        baselines=scores,
        baseline_seconds=seconds,
        gate=gate,
        test_rows=test.num_rows,
        warnings=warnings + gate.warnings,
    )


def strongest_baseline(metric: str, scores: dict[str, dict[str, float]]) -> str | None:
    """The baseline with the best finite value of `metric` (the first listed wins a tie), None if there is none."""
    finite = {name: s[metric] for name, s in scores.items() if metric in s and math.isfinite(s[metric])}
    if not finite:
        return None
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(finite, key=lambda name: sign * finite[name])


# --- next-item ranking: every position of the test sessions ------------------------------------------
def evaluation_rows(preprocessor: Any, test: pa.Table) -> tuple[pa.Table, np.ndarray | None]:
    """The rows the model and every baseline are scored on, and for next-item ranking the session of each.

    A session-ranking test row holds a history h_1..h_n and its next item t. Its evaluation points are
    every next-item position of the session, as in the session-recommendation literature (GRU4Rec,
    Hidasi et al. 2016; Ludewig & Jannach 2018): h_1 -> h_2, h_1..h_2 -> h_3, ..., h_1..h_n -> t, so a
    session of n + 1 views gives n points instead of one. The expansion is a table of the same columns
    (the history column holds each prefix, the target column its next item), handed unchanged to the model
    and to every baseline, so both sides answer exactly the same requests; serving (one request = one
    history) is untouched. Nulls in a history are dropped first, as the preprocessor drops them. Returns
    (table, session index per row), or (test, None) when the task is not next-item ranking from a
    sequence.
    """
    sequence = getattr(preprocessor, "sequence", None)
    if not sequence or preprocessor.target.kind != "ranking" or test.num_rows == 0:
        return test, None
    history = _combine(test[sequence.name])
    target = _combine(test[preprocessor.target.name])
    parents = pc.list_parent_indices(history).to_numpy(zero_copy_only=False)
    items = pc.list_flatten(history)
    valid = items.is_valid().to_numpy(zero_copy_only=False)
    items, parents = items.filter(pa.array(valid)), parents[valid]
    count = np.bincount(parents, minlength=test.num_rows)  # n: the history's non-null items
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    points = np.maximum(count, 1)  # an empty history still asks for its next item once
    session = np.repeat(np.arange(test.num_rows), points)
    step = np.arange(len(session)) - np.repeat(np.cumsum(points) - points, points)  # 0..points-1
    prefix = np.where(count[session] > 0, step + 1, 0)  # the prefix h_1..h_(step+1)
    offsets = np.concatenate([[0], np.cumsum(prefix)])
    taken = np.repeat(start[session], prefix) + (np.arange(offsets[-1]) - np.repeat(offsets[:-1], prefix))
    list_type = pa.large_list if pa.types.is_large_list(history.type) else pa.list_
    values = items.take(pa.array(taken, pa.int64()))
    offsets_array = pa.array(offsets, pa.int64() if list_type is pa.large_list else pa.int32())
    lists = (pa.LargeListArray if list_type is pa.large_list else pa.ListArray).from_arrays(offsets_array, values)
    inner = step + 1 < count[session]  # the next item is still in the history; else it is the target
    candidates = pa.concat_arrays([items.cast(target.type), target])
    nexts = candidates.take(pa.array(np.where(inner, start[session] + step + 1, len(items) + session), pa.int64()))
    expanded = test.take(pa.array(session, pa.int64()))
    expanded = expanded.set_column(
        expanded.schema.get_field_index(sequence.name), sequence.name, lists.cast(history.type)
    )
    expanded = expanded.set_column(
        expanded.schema.get_field_index(preprocessor.target.name), preprocessor.target.name, nexts
    )
    return expanded, session


def paired_lifts(
    metric: str, model: RowOutputs, baseline: RowOutputs, resamples: int, seed: int, sessions: np.ndarray | None
) -> np.ndarray:
    """The bootstrap's lifts. With `sessions` (next-item positions), whole SESSIONS are resampled, not
    positions: the positions of one session share its history and are correlated, so resampling them one by
    one would give too narrow an interval (the cluster bootstrap; Field & Welsh, 2007). Every position of a
    session drawn c times counts c times in that resample."""
    if sessions is None:
        return metric_functions.bootstrap_lift(metric, model, baseline, resamples, seed=seed)
    if len(model) != len(baseline):
        raise ValueError(f"paired bootstrap needs the same rows: model {len(model)}, baseline {len(baseline)}")
    sign = 1.0 if higher_is_better(metric) else -1.0
    clusters = int(sessions.max()) + 1 if len(sessions) else 0
    lifts = [
        sign * (metric_functions.weighted_metric(metric, model, weights) - metric_functions.weighted_metric(metric, baseline, weights))
        for weights in (drawn[:, sessions] for drawn in metric_functions.resample_weights(clusters, resamples, seed))
    ]
    return np.concatenate(lifts) if lifts else np.zeros(0)


def _combine(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def package_outputs(package: Any, table: pa.Table) -> RowOutputs:
    """A loaded package's per-row outputs on a table (ranks, probabilities or predictions), in batches of
    EVAL_BATCH rows under inference_mode, as its validation step summarises them."""
    import torch

    from rscale.models.task_module import task_summary

    batch = package.preprocessor.transform(table)
    module = package.module
    task = package.preprocessor.task
    summaries = []
    with torch.inference_mode():
        for start in range(0, table.num_rows, EVAL_BATCH):
            part = {name: tensor[start : start + EVAL_BATCH] for name, tensor in batch.items()}
            if "lengths" in part:
                part["sequence"] = part["sequence"][:, : max(1, int(part["lengths"].max()))]
            summaries.append(task_summary(module, module(part), part["target"]))
    if not summaries:
        return RowOutputs(task.kind, np.zeros(0, np.int64), np.zeros(0))
    values = torch.cat([s[0] for s in summaries]).cpu().numpy()
    target = torch.cat([s[1] for s in summaries]).cpu().numpy()
    return task.row_outputs(values, target)  # type: ignore[no-any-return]


def score_package(package: Any, table: pa.Table, metrics: list[str]) -> dict[str, float]:
    """The spec's metrics of a loaded package on a table, on the same rows as `evaluate` (every next-item
    position for session ranking), so a champion and a challenger are compared like for like."""
    scored, _ = evaluation_rows(package.preprocessor, table)
    return metric_functions.metrics_of(metrics, package_outputs(package, scored))


def decide_gate(
    gate: Any,
    metrics: dict[str, float],
    baseline: str,
    baseline_metrics: dict[str, float],
    lifts: np.ndarray | None = None,
    rows: int = 0,
    sessions: int | None = None,
) -> GateDecision:
    """Pass or block deployment, with the numbers, the lift's interval (from `lifts`, the bootstrap's
    resampled lifts) and a sentence saying why."""
    if gate is None:
        return GateDecision(
            passed=True,
            metric=None,
            model_value=None,
            baseline_value=None,
            required_value=None,
            reason="no gate in the spec: every trained model is deployed",
        )
    metric = gate.metric
    model_value = metrics.get(metric)
    baseline_value = baseline_metrics.get(metric)
    if model_value is None or not math.isfinite(model_value):
        return GateDecision(
            passed=False,
            metric=metric,
            model_value=model_value,
            baseline_value=baseline_value,
            required_value=None,
            reason=f"the model has no finite {metric} on the test split",
        )
    if baseline == "none" or baseline_value is None:
        return GateDecision(
            passed=True,
            metric=metric,
            model_value=model_value,
            baseline_value=None,
            required_value=None,
            reason=f"no baseline to compare {metric} with (evaluate.baseline: none)",
        )
    higher = higher_is_better(metric)
    margin = abs(baseline_value) * gate.min_lift
    required = required_value(metric, baseline_value, gate.min_lift)
    lift = model_value - baseline_value if higher else baseline_value - model_value
    passed = reaches(metric, model_value, required)
    confidence = getattr(gate, "confidence", None)
    interval = None
    if lifts is not None and len(lifts):
        level = confidence or REPORTED_CONFIDENCE
        low, high = np.quantile(lifts, [(1 - level) / 2, (1 + level) / 2])
        interval = LiftInterval(
            confidence=level, low=float(low), high=float(high), resamples=len(lifts), rows=rows, sessions=sessions
        )
    sure = not (confidence and interval is not None and interval.low < margin)
    relation = (">=" if passed else "<") if higher else ("<=" if passed else ">")
    required_text = f"{'+' if higher else '-'}{gate.min_lift:.1%}"
    reason = (
        f"{metric} {model_value:.4f} {relation} required {required:.4f} "
        f"(strongest baseline {baseline} {baseline_value:.4f} {required_text})"
    )
    if interval is not None:
        reason += (
            f"; lift {lift:+.4f}, {interval.confidence:.0%} interval [{interval.low:+.4f}, {interval.high:+.4f}] "
            + (
                f"({interval.resamples:,} paired resamples of {interval.rows:,} test rows)"
                if interval.sessions is None
                else f"({interval.resamples:,} paired resamples of {interval.sessions:,} test sessions, "
                f"{interval.rows:,} next-item positions)"
            )
        )
        if passed and not sure:
            reason += f", whose lower end is below the required lift {margin:+.4f} (gate.confidence {confidence:g})"
    passed = passed and sure
    reason += f": {'deploy' if passed else 'blocked'}"
    return GateDecision(
        passed=passed,
        metric=metric,
        model_value=model_value,
        baseline_value=baseline_value,
        required_value=required,
        reason=reason,
        baseline=baseline,
        lift=lift,
        required_lift=margin,
        interval=interval,
        confidence=confidence,
        warnings=gate_warnings(metric, baseline, baseline_value, required, margin, interval),
    )


def gate_warnings(
    metric: str, baseline: str, baseline_value: float, required: float, margin: float, interval: LiftInterval | None
) -> list[str]:
    """What makes the decision shaky: an interval that straddles the required lift, a baseline at the ceiling."""
    out = []
    if interval is not None and interval.low < margin < interval.high:
        out.append(
            f"the test split is too small to tell the lift from the required {margin:+.4f}: its "
            f"{interval.confidence:.0%} interval [{interval.low:+.4f}, {interval.high:+.4f}] contains it; more test "
            "rows (a larger split.test or more data) would decide"
        )
    best = best_possible(metric)
    if best is not None:
        higher = higher_is_better(metric)
        if (required > best) if higher else (required < best):
            out.append(
                f"the gate asks for {metric} {required:.4f}, beyond its best possible value {best:g}: it can never "
                "pass; lower evaluate.gate.min_lift"
            )
        elif abs(baseline_value - best) <= CEILING_GAP:
            stricter = stricter_metrics(metric_task(metric))
            out.append(
                f"baseline {baseline} is at the ceiling of {metric} ({baseline_value:.4f}): a better model cannot "
                f"show; gate on a stricter metric (e.g. {stricter})"
            )
    return out
