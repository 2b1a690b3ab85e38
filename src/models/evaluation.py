"""Evaluation: the model and its baseline on the test split, and the gate that decides deployment.

The gate compares one metric: for higher-is-better metrics the model must reach
baseline + |baseline| * min_lift (= baseline * (1 + min_lift) for the usual non-negative metrics);
for lower-is-better ones (log_loss, rmse, mae) it must reach baseline - |baseline| * min_lift.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from rscale.compiler.spec.evaluate import higher_is_better

EVAL_BATCH = 4096


class GateDecision(BaseModel):
    passed: bool
    metric: str | None
    model_value: float | None
    baseline_value: float | None
    required_value: float | None
    reason: str


class Evaluation(BaseModel):
    metrics: dict[str, float]
    baseline: str
    baseline_metrics: dict[str, float]
    gate: GateDecision
    test_rows: int


def evaluate(package_dir: str | Path, plan: Any, train: pa.Table, test: pa.Table) -> Evaluation:
    """Score the package and the plan's baseline on `test` (baseline fitted on `train`), then apply the gate."""
    from rscale.models.baselines import fit_baseline
    from rscale.models.package import ModelPackage

    package = ModelPackage.load(package_dir)
    metrics = score_package(package, test, list(plan.evaluate.metrics))
    baseline = plan.evaluate.baseline
    baseline_metrics = fit_baseline(baseline, train, plan).score(test, plan) if baseline != "none" else {}
    gate = decide_gate(plan.evaluate.gate, metrics, baseline, baseline_metrics)
    return Evaluation(
        metrics=metrics, baseline=baseline, baseline_metrics=baseline_metrics, gate=gate, test_rows=test.num_rows
    )


def score_package(package: Any, table: pa.Table, metrics: list[str]) -> dict[str, float]:
    """The spec's metrics of a loaded package on a table, in batches of EVAL_BATCH rows under inference_mode."""
    import torch

    from rscale.models.task_module import task_metrics, task_summary

    batch = package.preprocessor.transform(table)
    module = package.module
    config = dict(module.rscale_config, metrics=metrics)
    holder = type("MetricsFor", (), {"rscale_config": config})()
    summaries = []
    with torch.inference_mode():
        for start in range(0, table.num_rows, EVAL_BATCH):
            part = {name: tensor[start : start + EVAL_BATCH] for name, tensor in batch.items()}
            if "lengths" in part:
                part["sequence"] = part["sequence"][:, : max(1, int(part["lengths"].max()))]
            summaries.append(task_summary(holder, module(part), part["target"]))
    return {name: float(value) for name, value in task_metrics(holder, summaries).items()}


def decide_gate(
    gate: Any, metrics: dict[str, float], baseline: str, baseline_metrics: dict[str, float]
) -> GateDecision:
    """Pass or block deployment, with the numbers and a sentence saying why."""
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
    required = baseline_value + margin if higher else baseline_value - margin
    passed = model_value >= required if higher else model_value <= required
    relation = (">=" if passed else "<") if higher else ("<=" if passed else ">")
    lift = f"{'+' if higher else '-'}{gate.min_lift:.1%}"
    reason = (
        f"{metric} {model_value:.4f} {relation} required {required:.4f} "
        f"(baseline {baseline} {baseline_value:.4f} {lift}): {'deploy' if passed else 'blocked'}"
    )
    return GateDecision(
        passed=passed,
        metric=metric,
        model_value=model_value,
        baseline_value=baseline_value,
        required_value=required,
        reason=reason,
    )
