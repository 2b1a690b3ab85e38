"""Target kinds: what a model's output means, one registered config each (the `TASKS` registry).

The spec names a learning task (`plan.task`: ranking, classification or regression, from the model's
registration); the target's kind refines it into what training and serving need: `binary`,
`multiclass`, `regression` or `ranking` (next item). Each kind registers a light config here, which says
which spec-level task it serves, when it claims a target, and the metrics that score it, and the dotted
path of its runtime Task in `rscale.models.tasks` (loss, output activation, target encoding, metrics,
response, constant baseline), imported only where torch runs. The compiler reads only this module.
"""

from typing import ClassVar, Literal

from rscale.compiler.spec.base import Block
from rscale.compiler.spec.evaluate import CLASSIFICATION_METRICS, RANKING_METRICS, REGRESSION_METRICS
from rscale.registry import Registry

TASKS: Registry = Registry("task", key="kind")


class TaskConfig(Block):
    """What every target kind declares: the spec-level task it serves, the targets it claims, its metrics."""

    task: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    ranked_at_k: ClassVar[bool] = False  # metrics take a cut-off (`hit_rate@10`)
    stricter: ClassVar[str] = ""  # metrics that still separate models when a baseline is at a metric's ceiling
    priority: ClassVar[int] = 0  # kinds are asked in descending priority (then registration order)

    @classmethod
    def claims(cls, task: str, target_type: str) -> bool:
        """Whether a spec of `task` with a target of feature type `target_type` is encoded as this kind."""
        return task == cls.task


@TASKS.register("ranking", impl="rscale.models.tasks:RANKING")
class RankingTask(TaskConfig):
    """The next item of a session, scored over the whole catalogue."""

    kind: Literal["ranking"] = "ranking"
    task: ClassVar[str] = "ranking"
    metrics: ClassVar[tuple[str, ...]] = RANKING_METRICS
    ranked_at_k: ClassVar[bool] = True
    stricter: ClassVar[str] = "hit_rate@5 or mrr@10"
    priority: ClassVar[int] = 2  # a ranking spec ranks, whatever the target's type


@TASKS.register("regression", impl="rscale.models.tasks:REGRESSION")
class RegressionTask(TaskConfig):
    """A numeric value, learned standardised."""

    kind: Literal["regression"] = "regression"
    task: ClassVar[str] = "regression"
    metrics: ClassVar[tuple[str, ...]] = REGRESSION_METRICS
    stricter: ClassVar[str] = "rmse"
    priority: ClassVar[int] = 1

    @classmethod
    def claims(cls, task: str, target_type: str) -> bool:
        # a numeric target is regressed even under a classification task (a custom module left at its
        # default task): there are no classes to learn
        return task == cls.task or target_type == "numeric"


@TASKS.register("binary", impl="rscale.models.tasks:BINARY")
class BinaryTask(TaskConfig):
    """A yes/no target: one logit, the probability of 1."""

    kind: Literal["binary"] = "binary"
    task: ClassVar[str] = "classification"
    metrics: ClassVar[tuple[str, ...]] = CLASSIFICATION_METRICS
    stricter: ClassVar[str] = "log_loss"

    @classmethod
    def claims(cls, task: str, target_type: str) -> bool:
        return task == cls.task and target_type == "binary"


@TASKS.register("multiclass", impl="rscale.models.tasks:MULTICLASS")
class MulticlassTask(TaskConfig):
    """One of the classes seen in training: a logit per class."""

    kind: Literal["multiclass"] = "multiclass"
    task: ClassVar[str] = "classification"
    metrics: ClassVar[tuple[str, ...]] = CLASSIFICATION_METRICS
    stricter: ClassVar[str] = "log_loss"
    priority: ClassVar[int] = -1  # what a classification target is when no other kind claims it


def task_config(kind: str) -> type[TaskConfig]:
    return TASKS.entry(kind).config  # type: ignore[return-value]


def stricter_metrics(task: str) -> str:
    """What to gate on instead when a baseline sits at the ceiling of a `task` metric."""
    return next(task_config(kind).stricter for kind in TASKS.names() if task_config(kind).task == task)


def target_kind(task: str, target_type: str) -> str:
    """The kind a spec of `task` encodes its `target_type` target as: the first registered kind (highest
    priority first) that claims it."""
    configs = sorted(TASKS.configs(), key=lambda config: -config.priority)  # type: ignore[attr-defined]
    for config in configs:
        if config.claims(task, target_type):  # type: ignore[attr-defined]
            return str(config.model_fields["kind"].default)
    raise ValueError(f"no registered target kind claims a {target_type} target of a {task} task")


def serves(task: str, target_type: str) -> bool:
    """Whether a `task` spec with a `target_type` target is learned as that task (not claimed by a kind of
    another task, as a numeric target is by regression)."""
    return task_config(target_kind(task, target_type)).task == task


def metric_names(task: str) -> list[str]:
    """The metrics that score a spec-level task, as a spec writes them (`hit_rate@K`, `auc`)."""
    names: dict[str, None] = {}
    for kind in TASKS.names():
        config = task_config(kind)
        if config.task == task:
            names.update(dict.fromkeys(f"{m}@K" if config.ranked_at_k else m for m in config.metrics))
    return list(names)
