"""Defaults that follow from the spec itself, filled in once the features (and so the task) are known.

- `split` without `by`: `time` when there is a time column (`split.column` or `data.time_column`), else `random`.
- no `evaluate`: the task's metrics, the task's fair baselines (`evaluate.baseline` left out: every
  baseline registered as a default for the task, and the gate compares with the strongest), and a gate on
  the first metric that the model must not be worse than that baseline (min_lift 0).

`rs compile --explain` shows what each left-out section became (`explain_defaults`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rscale.compiler.spec import Spec
from rscale.compiler.spec.evaluate import EvaluateSpec, Gate

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

# The task's metrics (the first one is gated); the baselines are the task's defaults in evaluate.BASELINES.
DEFAULT_METRICS = {
    "classification": ["auc", "accuracy"],
    "regression": ["rmse", "mae", "r2"],
    "ranking": ["hit_rate@{k}", "mrr@{k}"],
}
SECTIONS = ("checks", "split", "train", "evaluate", "tracker", "serving")


def default_evaluate(spec: Spec, task: str) -> EvaluateSpec:
    """The evaluate section a spec gets when it leaves it out."""
    k = min(10, int(getattr(spec.model, "top_k", 10)))
    metrics = [m.format(k=k) for m in DEFAULT_METRICS[task]]
    return EvaluateSpec(metrics=metrics, gate=Gate(metric=metrics[0], min_lift=0.0))  # type: ignore[arg-type]


def split_by(spec: Spec) -> str:
    """What a split without `by` splits on."""
    if spec.split.by is not None:
        return spec.split.by
    return "time" if (spec.split.column or spec.data.time_column) else "random"


def with_defaults(spec: Spec) -> Spec:
    """The spec with `split.by` and `evaluate` filled in. Needs resolved features (the task comes from them)."""
    from rscale.compiler.crossfield import task_of

    update: dict[str, Any] = {}
    if spec.split.by is None:
        update["split"] = spec.split.model_copy(update={"by": split_by(spec)})
    if spec.evaluate is None:
        update["evaluate"] = default_evaluate(spec, task_of(spec))
    return spec.model_copy(update=update) if update else spec


def explain_defaults(plan: Plan, written: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(section, value the plan holds, why) for each section the spec left out, and a split without `by`."""
    out: list[tuple[str, Any, str]] = []
    for section in SECTIONS:
        if section == "split" and section in written and isinstance(written["split"], dict) and "by" not in written["split"]:
            why = "by time: the data has a time column" if plan.split.by == "time" else "at random: no time column"
            out.append(("split.by", plan.split.by, why))
            continue
        if section in written:
            continue
        value: Any = getattr(plan, section)
        if section == "checks":
            out.append((section, [], "no data checks (add row_count, not_null, ... to stop bad data before training)"))
            continue
        dumped = value.model_dump(mode="json", exclude_none=True)
        if section == "evaluate":  # the baselines a left-out `baseline` stands for, as the gate will use them
            dumped = {"metrics": dumped["metrics"], "baseline": value.baseline_names(plan.task), "gate": dumped.get("gate")}
        why = {
            "split": "by time: the data has a time column" if plan.split.by == "time" else "at random: there is no time column",
            "train": "the training defaults",
            "evaluate": f"the {plan.task} task's metrics and fair baselines, gated on the first metric against the strongest",
            "tracker": "MLflow on the stack's tracking URI",
            "serving": "a local endpoint",
        }[section]
        out.append((section, dumped, why))
    return out
