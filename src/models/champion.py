"""Champion and challenger: a new model (the challenger) is promoted only if it is not worse than the model
in production (the champion) on the same, new test split.

Both are scored with evaluation's own scoring function on the challenger's test split, on the gate's
metric. The gate's `min_lift` is the margin: a challenger worse than the champion by more than
|champion| * |min_lift| is registered but not promoted, and not deployed. (With `min_lift: 0` it must be
at least as good; a negative lift, which lets a model trail its baseline, lets it trail the champion as
much.) The first deploy of a use case has no champion.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import BaseModel

from rscale.compiler.spec.evaluate import higher_is_better, reaches, required_value

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan


class ChampionDecision(BaseModel):
    passed: bool
    champion: str | None = None  # the production model version, e.g. recs:3
    metric: str | None = None
    challenger_value: float | None = None
    champion_value: float | None = None
    required_value: float | None = None
    reason: str


def challenge(plan: Plan, challenger_metrics: dict[str, float], test: pa.Table) -> ChampionDecision:
    """Score the production version of `plan.name` on `test` and decide whether the challenger may replace it."""
    from rscale.monitoring.versions import load_artifact, production_version

    gate = plan.evaluate.gate
    if gate is None:
        return ChampionDecision(passed=True, reason="no gate in the spec, so no champion comparison")
    found = production_version(plan.name)
    if found is None:
        return ChampionDecision(
            passed=True, metric=gate.metric, reason="first deploy: there is no champion in production"
        )
    record, response = found
    package = load_artifact(response, "model_package")
    if package is None:
        return ChampionDecision(
            passed=True,
            champion=str(record),
            metric=gate.metric,
            reason=f"champion {record} has no model package in the registry: not compared",
        )
    return compare(str(record), score_champion(package.path, test, gate.metric), challenger_metrics, gate)


def score_champion(package_dir: str, test: pa.Table, metric: str) -> float:
    from rscale.models.evaluation import score_package
    from rscale.models.package import ModelPackage

    return score_package(ModelPackage.load(package_dir), test, [metric])[metric]


def compare(champion: str, champion_value: float, challenger_metrics: dict[str, float], gate: Any) -> ChampionDecision:
    """The decision, with both figures: the challenger may be worse than the champion by the gate's margin at most."""
    metric = gate.metric
    value = challenger_metrics.get(metric)
    if value is None or not math.isfinite(value) or not math.isfinite(champion_value):
        return ChampionDecision(
            passed=True,
            champion=champion,
            metric=metric,
            challenger_value=value,
            champion_value=champion_value,
            reason=f"{metric} is not finite for the challenger or champion {champion}: not compared",
        )
    higher = higher_is_better(metric)
    # a tolerance either way: min_lift -0.1 and 0.1 both allow the challenger to be 10% worse
    required = required_value(metric, champion_value, -abs(gate.min_lift))
    passed = reaches(metric, value, required)
    verdict = "promote" if passed else "keep the champion in production"
    relation = ("not worse than" if passed else "worse than") + f" champion {champion}"
    reason = (
        f"challenger {metric} {value:.4f} is {relation} ({champion_value:.4f}, "
        f"required {'>=' if higher else '<='} {required:.4f} with margin {abs(gate.min_lift):.1%}): {verdict}"
    )
    return ChampionDecision(
        passed=passed,
        champion=champion,
        metric=metric,
        challenger_value=value,
        champion_value=champion_value,
        required_value=required,
        reason=reason,
    )
