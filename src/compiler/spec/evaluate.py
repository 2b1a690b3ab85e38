"""`evaluate`: metrics on the held-out split, the baselines to beat, and the gate that decides deployment.

Baselines are a registry family (`BASELINES`, keyed by `name`), like models: each registers a light config
class here, which declares the tasks it fits, whether it is among a task's defaults, and the paper or
library it follows, and the dotted path of its implementation (in `rscale.models.baselines`), imported only
by the evaluate step. Cross-field checks and the default list ask the registry.
"""

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from rscale.compiler.spec.base import Block, spec_value_error
from rscale.registry import Registry

METRIC = re.compile(r"^(hit_rate|mrr|ndcg|recall)@([1-9]\d{0,5})$|^(accuracy|auc|f1|log_loss|rmse|mae|r2)$")
RANKING_METRICS = ("hit_rate", "mrr", "ndcg", "recall")
CLASSIFICATION_METRICS = ("accuracy", "auc", "f1", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = ("log_loss", "rmse", "mae")
BOUNDED_ABOVE_BY_ONE = RANKING_METRICS + ("accuracy", "auc", "f1", "r2")  # a perfect score is 1

BASELINES: Registry = Registry("baseline", key="name")


class BaselineConfig(Block):
    """What every baseline declares: the tasks it fits, whether a task uses it by default, what it follows."""

    tasks: ClassVar[tuple[str, ...]] = ()
    default: ClassVar[bool] = False  # among the baselines compared when `evaluate.baseline` is left out
    optional_package: ClassVar[str | None] = None  # a Python package it needs beyond rscale's own
    distribution: ClassVar[str | None] = None  # what `pip install` names that package
    follows: ClassVar[str] = ""


@BASELINES.register("popularity", impl="rscale.models.baselines:Popularity")
class PopularityBaseline(BaselineConfig):
    """The most frequent next items in training, the same list for everyone."""

    name: Literal["popularity"] = "popularity"
    tasks: ClassVar[tuple[str, ...]] = ("ranking",)
    default: ClassVar[bool] = True
    follows: ClassVar[str] = "POP in Ludwig & Jannach, 'Evaluation of session-based recommendation algorithms' (2018)"


@BASELINES.register("item_to_item", impl="rscale.models.baselines:ItemToItem")
class ItemToItemBaseline(BaselineConfig):
    """Directed transitions from the history's last item (repeats kept), then co-occurrence, then popularity."""

    name: Literal["item_to_item"] = "item_to_item"
    tasks: ClassVar[tuple[str, ...]] = ("ranking",)
    default: ClassVar[bool] = True
    follows: ClassVar[str] = (
        "first-order Markov / simple association rules (SR, AR) in Ludwig & Jannach (2018); "
        "item-to-item co-occurrence as in Linden, Smith & York, 'Amazon.com recommendations' (2003)"
    )


@BASELINES.register("session_knn", impl="rscale.models.baselines:SessionKNN")
class SessionKNNBaseline(BaselineConfig):
    """V-SKNN: the k most similar recent training sessions vote for their items."""

    name: Literal["session_knn"] = "session_knn"
    tasks: ClassVar[tuple[str, ...]] = ("ranking",)
    default: ClassVar[bool] = True
    follows: ClassVar[str] = (
        "V-SKNN of Ludwig & Jannach, 'Evaluation of session-based recommendation algorithms' (2018) and "
        "Jannach & Ludewig, 'When recurrent neural networks meet the neighborhood' (RecSys 2017)"
    )
    neighbours: int = Field(100, ge=1, description="k: how many most similar sessions vote (the papers' k=100).")
    sample: int = Field(
        1000, ge=1, description="Only the most recent sessions sharing an item with the current one are compared."
    )


@BASELINES.register("majority", impl="rscale.models.baselines:Majority")
class MajorityBaseline(BaselineConfig):
    """The most frequent class; for binary targets the positive rate as the probability."""

    name: Literal["majority"] = "majority"
    tasks: ClassVar[tuple[str, ...]] = ("classification",)
    default: ClassVar[bool] = True
    follows: ClassVar[str] = "scikit-learn's DummyClassifier(strategy='prior')"


@BASELINES.register("logistic", impl="rscale.models.baselines:Logistic")
class LogisticBaseline(BaselineConfig):
    """L2-regularised logistic (softmax) regression on standardised numerics and one-hot categoricals."""

    name: Literal["logistic"] = "logistic"
    tasks: ClassVar[tuple[str, ...]] = ("classification",)
    default: ClassVar[bool] = True
    follows: ClassVar[str] = "scikit-learn's LogisticRegression defaults (C=1, L2, lbfgs) on the same design matrix"


@BASELINES.register("mean", impl="rscale.models.baselines:Mean")
class MeanBaseline(BaselineConfig):
    """The training mean for every row."""

    name: Literal["mean"] = "mean"
    tasks: ClassVar[tuple[str, ...]] = ("regression",)
    default: ClassVar[bool] = True
    follows: ClassVar[str] = "scikit-learn's DummyRegressor(strategy='mean')"


@BASELINES.register("linear", impl="rscale.models.baselines:Linear")
class LinearBaseline(BaselineConfig):
    """Least squares (a tiny ridge penalty) on the same features as logistic."""

    name: Literal["linear"] = "linear"
    tasks: ClassVar[tuple[str, ...]] = ("regression",)
    default: ClassVar[bool] = True
    follows: ClassVar[str] = "ordinary least squares (numpy.linalg.lstsq) with a 1e-6 ridge for collinear columns"


@BASELINES.register("gbdt", impl="rscale.models.baselines:GradientBoosting")
class GradientBoostingBaseline(BaselineConfig):
    """Histogram gradient-boosted trees with scikit-learn's defaults (categoricals handled natively)."""

    name: Literal["gbdt"] = "gbdt"
    tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")
    default: ClassVar[bool] = True
    optional_package: ClassVar[str | None] = "sklearn"
    distribution: ClassVar[str | None] = "scikit-learn"
    follows: ClassVar[str] = (
        "scikit-learn's HistGradientBoostingClassifier/Regressor (LightGBM's algorithm), default settings"
    )


def baseline_config(name: str) -> BaselineConfig:
    """The registered config of a baseline, with its defaults."""
    return BASELINES.entry(name).config(name=name)  # type: ignore[return-value]


def baseline_tasks(name: str) -> tuple[str, ...]:
    return BASELINES.entry(name).config.tasks  # type: ignore[attr-defined,no-any-return]


def default_baselines(task: str) -> list[str]:
    """The baselines compared when `evaluate.baseline` is left out: every registered default for the task."""
    return [
        name
        for name in BASELINES.names()
        if task in baseline_tasks(name) and BASELINES.entry(name).config.default  # type: ignore[attr-defined]
    ]


def _defaults_described() -> str:
    """The default baselines of each task, in registration order, for the spec reference: generated from the
    registry, so the list lives in one place."""
    configs = BASELINES.configs()
    tasks = list(dict.fromkeys(task for config in configs for task in config.tasks))  # type: ignore[attr-defined]
    listed = "; ".join(
        f"{task}: {', '.join(c.model_fields['name'].default for c in configs if task in c.tasks and c.default)}"  # type: ignore[attr-defined]
        for task in tasks
    )
    optional = "; ".join(
        f"{c.model_fields['name'].default} only where {c.distribution} is installed"  # type: ignore[attr-defined]
        for c in configs
        if c.default and c.optional_package  # type: ignore[attr-defined]
    )
    return f"{listed}; {optional}" if optional else listed


def _known_baseline(name: str) -> str:
    if name == "none" or name in BASELINES.names():
        return name
    from rscale.compiler.errors import did_you_mean

    hint = did_you_mean(name, BASELINES.names())
    raise spec_value_error(
        f"unknown baseline `{name}`", (hint + " " if hint else "") + f"use {', '.join(BASELINES.names())} or none"
    )


BaselineName = Annotated[
    str,
    AfterValidator(_known_baseline),
    Field(json_schema_extra={"enum": [*BASELINES.names(), "none"]}),
]


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
        0.0,
        description="Required relative improvement over the strongest baseline (0.05 = 5% better). "
        "0: must not be worse.",
    )
    confidence: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="If set (e.g. 0.9), deploy only when the lower end of the central bootstrap interval of the "
        "lift at this level clears the required lift, not just the point estimate. The interval is always "
        "reported (at 0.95 when this is not set).",
    )
    resamples: int = Field(
        1000, ge=100, le=100_000, description="Paired bootstrap resamples of the test rows for the lift's interval."
    )


class EvaluateSpec(Block):
    metrics: list[Metric] = Field(
        min_length=1,
        description="Metrics on the test split: hit_rate@K, mrr@K, ndcg@K, recall@K (ranking); accuracy, auc, f1, "
        "log_loss (classification); rmse, mae, r2 (regression).",
    )
    baseline: BaselineName | list[BaselineName] | None = Field(
        None,
        description="The status quo the model must beat: one baseline or a list; the gate compares with the "
        f"strongest of them on its metric. Left out: the task's defaults ({_defaults_described()}). `none`: no "
        "baseline.",
    )
    gate: Gate | None = Field(None, description="Without a gate every trained model is deployed.")

    def baseline_names(self, task: str) -> list[str]:
        """The baselines to fit for `task`: as listed, the task's defaults when left out, [] for `none`."""
        if self.baseline is None:
            return default_baselines(task)
        names = [self.baseline] if isinstance(self.baseline, str) else list(self.baseline)
        return [name for name in dict.fromkeys(names) if name != "none"]

    @property
    def baseline_is_none(self) -> bool:
        """True when the spec says `baseline: none` (an explicit choice: no comparison)."""
        names = [self.baseline] if isinstance(self.baseline, str) else list(self.baseline or [])
        return bool(names) and all(name == "none" for name in names)


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


def best_possible(metric: str) -> float | None:
    """The metric's best value (1 for hit rate, AUC, accuracy, r2...; 0 for losses), None when unbounded."""
    name = metric.split("@")[0]
    if name in BOUNDED_ABOVE_BY_ONE:
        return 1.0
    if name in LOWER_IS_BETTER:
        return 0.0
    return None


def required_value(metric: str, reference: float, lift: float) -> float:
    """What `metric` must reach to be `lift` (relative, signed: -0.1 allows 10% worse) better than `reference`,
    for higher-is-better metrics and lower-is-better ones alike. The gate and the champion check both ask this."""
    margin = abs(reference) * lift
    return reference + margin if higher_is_better(metric) else reference - margin


def reaches(metric: str, value: float, required: float) -> bool:
    """Whether `value` is at least as good as `required` on `metric`."""
    return value >= required if higher_is_better(metric) else value <= required
