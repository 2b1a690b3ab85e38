"""`evaluate`: metrics on the held-out split, a baseline to beat, and the gate that decides deployment."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from rscale.compiler.spec.base import Block, spec_value_error

METRIC = re.compile(r"^(hit_rate|mrr|ndcg|recall)@([1-9]\d{0,5})$|^(accuracy|auc|f1|log_loss|rmse|mae|r2)$")
RANKING_METRICS = ("hit_rate", "mrr", "ndcg", "recall")
CLASSIFICATION_METRICS = ("accuracy", "auc", "f1", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = ("log_loss", "rmse", "mae")

BASELINE_TASK = {
    "popularity": "ranking",
    "item_to_item": "ranking",
    "majority": "classification",
    "logistic": "classification",
    "mean": "regression",
    "linear": "regression",
}


def _known_metric(metric: str) -> str:
    if METRIC.match(metric):
        return metric
    from rscale.compiler.errors import did_you_mean

    k = metric.split("@", 1)[1] if "@" in metric and metric.split("@", 1)[1].isdigit() else "10"
    names = [f"{m}@{k}" for m in RANKING_METRICS] + list(CLASSIFICATION_METRICS + REGRESSION_METRICS)
    hint = did_you_mean(metric, names)
    raise spec_value_error(
        f"unknown metric `{metric}`",
        (hint + " " if hint else "") + "use hit_rate@K, mrr@K, ndcg@K, recall@K, accuracy, auc, f1, log_loss, rmse, mae or r2",
    )


Metric = Annotated[
    str,
    AfterValidator(_known_metric),
    Field(json_schema_extra={"pattern": METRIC.pattern, "examples": ["hit_rate@10", "mrr@10", "auc", "rmse"]}),
]


class Gate(Block):
    metric: str = Field(description="The metric the gate compares, one of `evaluate.metrics`.")
    min_lift: float = Field(
        0.0, description="Required relative improvement over the baseline (0.05 = 5% better). 0: must not be worse."
    )


class EvaluateSpec(Block):
    metrics: list[Metric] = Field(
        min_length=1,
        description="Metrics on the test split: hit_rate@K, mrr@K, ndcg@K, recall@K (ranking); accuracy, auc, f1, "
        "log_loss (classification); rmse, mae, r2 (regression).",
    )
    baseline: Literal["popularity", "item_to_item", "majority", "logistic", "mean", "linear", "none"] = Field(
        "none", description="The status quo the model must beat."
    )
    gate: Gate | None = Field(None, description="Without a gate every trained model is deployed.")


def metric_task(metric: str) -> str:
    """Which task a metric belongs to: ranking, classification or regression."""
    name = metric.split("@")[0]
    if name in RANKING_METRICS:
        return "ranking"
    if name in CLASSIFICATION_METRICS:
        return "classification"
    return "regression"


def higher_is_better(metric: str) -> bool:
    return metric.split("@")[0] not in LOWER_IS_BETTER
