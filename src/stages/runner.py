"""Run a compiled plan: the pre-flight work on the client, the ZenML pipeline, and the run's outcome.

Before the pipeline starts: the tracker is checked (a bad tracker fails before any training), the stack is
registered with ZenML, yesterday's prediction logs are ingested into the warehouse, and the data
fingerprint is taken, which keys the cache of the data steps.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rscale.compiler.errors import SpecError
from rscale.compiler.plan import Plan
from rscale.errors import RscaleError
from rscale.paths import use_project_state
from rscale.stages.artifacts import Deployment, RunOutcome


def prepare(plan: Plan) -> str:
    """Client-side work before the pipeline: tracker pre-flight, feedback ingest, data fingerprint."""
    from rscale.data.feedback import prepare_feedback
    from rscale.stacks.integrations import integration_problems
    from rscale.trackers import preflight
    from rscale.warehouses import connect

    problems = integration_problems(plan.stack, [plan.serving.tier])
    if problems:
        raise SpecError(problems)
    preflight(plan)
    with connect(plan.stack.warehouse) as warehouse:
        prepare_feedback(warehouse, plan)
        return warehouse.fingerprint(plan.data.sql)


def run_compiled(
    plan_file: str | Path,
    options: dict[str, Any] | None = None,
    fingerprint: str | None = None,
    deploy: bool = True,
    resume: bool = False,
) -> RunOutcome:
    """Run the pipeline for one compiled plan on its stack and collect the outcome. `resume` continues
    training from the plan's last checkpoint even when that run finished (a killed run resumes anyway)."""
    use_project_state()
    plan = Plan.read(plan_file)
    started = time.perf_counter()
    fingerprint = fingerprint or prepare(plan)

    from zenml import Model

    from rscale.stacks import ensure_registered
    from rscale.stages.pipeline import use_case_pipeline

    ensure_registered(plan.stack, activate=True)
    run_name = f"{plan.name}-{plan.hash[:8]}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    configured = use_case_pipeline.with_options(
        run_name=run_name,
        model=Model(name=plan.name, description=f"rscale use case {plan.name}", tags=["rscale"]),
        **(options or {}),
    )
    try:
        run = configured(plan=plan, fingerprint=fingerprint, deploy=deploy, resume=resume)
    except RscaleError:
        raise
    except Exception as exc:  # a step failed: surface rscale's own error rather than ZenML's wrapper
        cause = _rscale_cause(exc)
        if cause is not None:
            raise cause from None
        raise
    assert run is not None  # rscale's stacks run synchronously: the call returns the finished run
    steps = run.steps  # one query of ZenML's store, not one per use
    report_cached(run, steps)
    result = outcome(run, plan, fingerprint, time.perf_counter() - started, steps)
    from rscale.planning.history import record_run
    from rscale.stages.progress import note

    try:
        record_run(plan, fingerprint, run, result, deploy=deploy, resume=resume)  # what `rs plan` predicts the next run from
    except OSError as exc:  # the run itself succeeded; only the next plan's prediction loses this run
        note("plan", f"run not recorded for `rs plan`: {exc}", ok=False)
    return result


STEP_LABELS = {
    "load_data": "load",
    "train_model": "train",
    "evaluate_model": "evaluate",
    "register_model": "register",
}


def report_cached(run: Any, steps: dict[str, Any] | None = None) -> list[str]:
    """One status line per result ZenML reused from its cache (a cache hit skips the step's body, so its own
    lines were never printed): `✓ check  3/3 checks passed (cached)`. The load step's reuse gives three lines,
    check, load and split, as its run prints them. `steps`: `run.steps` if already fetched."""
    from zenml.enums import ExecutionStatus

    from rscale.stages.progress import note

    lines = []
    for name, step_run in (steps if steps is not None else run.steps).items():
        if step_run.status != ExecutionStatus.CACHED:
            continue
        try:
            results = cached_results(name, step_run)
        except Exception:  # an artifact that cannot be read back still was reused
            results = [(STEP_LABELS.get(name, name), "reused")]
        for label, result in results:
            lines.append(f"{label}: {result} (cached)")
            note(label, f"{result} [dim](cached)[/]")
    return lines


def cached_results(name: str, step_run: Any) -> list[tuple[str, str]]:
    """(label, what it found) for a reused step, read from its stored outputs (small records) or their
    metadata (tables, split indices)."""
    label = STEP_LABELS.get(name, name)
    if name == "load_data":
        results = step_run.outputs["check_report"][0].load().get("results", [])
        table = parts = step_run.outputs["examples"][0].run_metadata
        return [
            ("check", f"{sum(1 for r in results if r.get('passed'))}/{len(results)} checks passed"),
            ("load", f"{int(table.get('rows', 0)):,} rows, {len(table.get('columns', []))} columns"),
            ("split", " / ".join(f"{part} {int(parts.get(f'{part}_rows', 0)):,}" for part in ("train", "validation", "test"))),
        ]
    if name == "train_model":
        training = step_run.outputs["training"][0].load()
        return [(label, f"{training.epochs_run} epochs, best epoch {training.best_epoch}")]
    if name == "evaluate_model":
        evaluation = step_run.outputs["evaluation"][0].load()
        return [(label, " ".join(f"{k}={v:.4f}" for k, v in evaluation.metrics.items()))]
    if name == "register_model":
        registration = step_run.outputs["registration"][0].load()
        return [(label, f"model {registration.model_name} version {registration.version}")]
    return [(label, "reused")]


def _rscale_cause(exc: BaseException) -> RscaleError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, RscaleError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def outcome(run: Any, plan: Plan, fingerprint: str, seconds: float, steps: dict[str, Any] | None = None) -> RunOutcome:
    """The run's outcome read from its steps' outputs. `steps`: `run.steps` if already fetched (each access
    of `run.steps` is a query of ZenML's store)."""
    steps = steps if steps is not None else run.steps

    def load(step: str, output: str) -> Any:
        return steps[step].outputs[output][0].load()

    evaluation = load("evaluate_model", "evaluation")
    training = load("train_model", "training")
    registration = load("register_model", "registration")
    deployment = (
        load("deploy_model", "deployment")
        if "deploy_model" in steps
        else Deployment(deployed=False, reason="sweep member: deploy the best one with rs run .../best.yaml")
    )
    return RunOutcome(
        name=plan.name,
        plan_hash=plan.hash,
        run_id=str(run.id),
        run_name=run.name,
        seconds=seconds,
        fingerprint=fingerprint,
        swept=plan.swept,
        metrics=evaluation.metrics,
        baseline=evaluation.baseline,
        baseline_metrics=evaluation.baseline_metrics,
        gate=evaluation.gate,
        training=training,
        registration=registration,
        deployment=deployment,
        tracker_errors=evaluation.tracker_errors,
        champion=evaluation.champion,
    )
