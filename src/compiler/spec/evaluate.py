"""`evaluate`: metrics on the held-out split, a baseline to beat, and the gate that decides deployment."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from rscale.compiler.spec.base import Block

METRIC = re.compile(r"^(hit_rate|mrr|ndcg|recall)@(\d+)$|^(accuracy|auc|f1|log_loss|rmse|mae|r2)$")
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


class Gate(Block):
    metric: str = Field(description="The metric the gate compares, one of `evaluate.metrics`.")
    min_lift: float = Field(
        0.0, description="Required relative improvement over the baseline (0.05 = 5% better). 0: must not be worse."
    )


class EvaluateSpec(Block):
    metrics: list[str] = Field(min_length=1, description="hit_rate@K, mrr@K, ndcg@K, recall@K, accuracy, auc, ...")
    baseline: Literal["popularity", "item_to_item", "majority", "logistic", "mean", "linear", "none"] = Field(
        "none", description="The status quo the model must beat."
    )
    gate: Gate | None = Field(None, description="Without a gate every trained model is deployed.")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str]) -> list[str]:
        for metric in metrics:
            if not METRIC.match(metric):
                raise ValueError(
                    f"unknown metric {metric!r}; use hit_rate@K, mrr@K, ndcg@K, recall@K, "
                    "accuracy, auc, f1, log_loss, rmse, mae or r2"
                )
        return metrics


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
