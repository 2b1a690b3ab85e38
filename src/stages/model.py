"""Model steps: train with Lightning, evaluate against the baseline and gate, register the version.

The tracker run opened by `train_model` is re-opened by id in the later steps, so one tracked run holds
the params, per-epoch curves, final metrics, the gate decision and a link to the package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step

from rscale.compiler.plan import Plan
from rscale.data.split import SplitTable
from rscale.models.evaluation import Evaluation, evaluate
from rscale.paths import state_dir
from rscale.stages import materializers  # noqa: F401
from rscale.stages.artifacts import PackageDir, Registration, Training
from rscale.stages.progress import note, report


def _tags(plan: Plan) -> dict[str, str]:
    """ZenML run id, sweep id and the swept values, so tracked runs group and filter by them."""
    import os

    from rscale.trackers import SWEEP_ID_TAG, ZENML_RUN_ID_TAG

    tags = {"rscale.stack": plan.stack.name}
    try:
        tags[ZENML_RUN_ID_TAG] = str(get_step_context().pipeline_run.id)
    except RuntimeError:
        pass
    if os.environ.get("RS_SWEEP_ID"):
        tags[SWEEP_ID_TAG] = os.environ["RS_SWEEP_ID"]
    for key, value in plan.swept.items():
        tags[f"sweep.{key}"] = str(value)
    return tags


def _metric_names(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    """`hit_rate@10` -> `test_hit_rate_at_10`: the same spelling training uses for `val_...` curves."""
    return {f"{prefix}_{name.replace('@', '_at_')}": value for name, value in metrics.items()}


RUN_STATE = "run.json"  # in the plan's workdir: the data fingerprint of the last training, and whether it finished


def start_training(workdir: Path, fingerprint: str, resume: bool) -> str:
    """Decide whether this training resumes from the plan's last checkpoint, and say which.

    Training resumes whenever `checkpoints/last.ckpt` exists, so this keeps it only for a killed run of the
    same plan on the same data (no finish recorded), or when `resume` asks for it; otherwise a finished
    run's checkpoints are removed and training starts from scratch.
    """
    import shutil

    from rscale.models.training import CHECKPOINTS, LAST

    state_file = workdir / RUN_STATE
    try:
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
    except (OSError, ValueError):
        state = {}
    has_checkpoint = (workdir / CHECKPOINTS / LAST).exists()
    if not has_checkpoint:
        decision = "starting fresh"
    elif resume:
        decision = "resuming from the last checkpoint of this plan (--resume-training)"
    elif state.get("finished") is False and state.get("fingerprint") == fingerprint:
        decision = "resuming a killed run of this plan from its last checkpoint"
    else:
        why = (
            "the last run of this plan finished" if state.get("finished")
            else "the data changed since the killed run" if state
            else "no record of how the last run ended"
        )
        shutil.rmtree(workdir / CHECKPOINTS, ignore_errors=True)
        decision = f"starting fresh ({why}; --resume-training continues from its checkpoint)"
    workdir.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"fingerprint": fingerprint, "finished": False}))
    return decision


def finish_training(workdir: Path, fingerprint: str) -> None:
    """Record that this plan's training ran to its end, so the next run starts fresh."""
    (workdir / RUN_STATE).write_text(json.dumps({"fingerprint": fingerprint, "finished": True}))


@step
def train_model(
    examples: SplitTable, plan: Plan, check_report: dict, fingerprint: str, resume: bool = False
) -> tuple[Annotated[PackageDir, "model_package"], Annotated[Training, "training"]]:
    """Train the spec's model with Lightning on the plan's hardware, on the train and validation parts of the
    loaded table. A killed run of the plan resumes from its checkpoint; a finished one starts from scratch
    unless `resume` is set (`rs run --resume-training`)."""
    from rscale.models.training import train as fit
    from rscale.trackers import open_run

    train, validation = examples.part("train"), examples.part("validation")

    workdir = state_dir() / "work" / plan.name / plan.hash
    note("train", start_training(workdir, fingerprint, resume))
    run = open_run(plan, run_name=f"{plan.name}-{plan.hash}", tags=_tags(plan))
    try:
        run.log_params({"data.fingerprint": fingerprint})
        run.log_dict("checks.json", check_report)
        logger = run.lightning_logger()
        with report("train", f"{plan.model.type} on {plan.hardware.accelerator} x{plan.hardware.devices}") as status:
            result = fit(plan, train, validation, workdir, loggers=[logger] if logger else [], progress=True)
            settings = result.settings
            status.done(
                f"{result.epochs_run} epochs of at most {settings.get('max_epochs')} at batch "
                f"{settings.get('batch_size')}, best epoch {result.best_epoch} by {settings.get('monitor')}, "
                f"{result.samples_per_second:,.0f} samples/s"
            )
        for warning in result.warnings:
            note("train", warning, ok=False)
        finish_training(workdir, fingerprint)
    finally:
        run.close()
    summary = Training(
        package_dir=result.package_dir,
        checkpoint=result.checkpoint,
        best_epoch=result.best_epoch,
        metrics=Training.best_metrics(result.history, result.best_epoch),
        history=result.history,
        epochs_run=result.epochs_run,
        samples_per_second=result.samples_per_second,
        train_rows=result.train_rows,
        tracker_run_id=run.run_id,
        tracker_url=run.url,
        tracker_errors=list(run.errors),
    )
    return PackageDir(path=result.package_dir), summary


@step
def evaluate_model(
    model_package: PackageDir, training: Training, examples: SplitTable, plan: Plan
) -> Annotated[Evaluation, "evaluation"]:
    """Score the model and the baselines on the held-out split; the gate compares with the strongest and
    decides whether it ships, with a bootstrap interval of the lift and warnings through `note`. A model that
    passes is also compared with the one in production (models.champion)."""
    from rscale.models.champion import challenge
    from rscale.trackers import open_run

    train, test = examples.part("train"), examples.part("test")
    baselines = ", ".join(plan.evaluate.baseline_names(plan.task)) or "no baseline"
    with report("evaluate", f"{', '.join(plan.evaluate.metrics)} vs {baselines}") as status:
        evaluation = evaluate(model_package.path, plan, train, test)
        champion = challenge(plan, evaluation.metrics, test) if evaluation.gate.passed else None
        if champion is not None and not champion.passed:  # registered, but not promoted nor deployed
            evaluation.gate = evaluation.gate.model_copy(update={"passed": False, "reason": champion.reason})
        gate = evaluation.gate
        status.done(
            " ".join(f"{k}={v:.4f}" for k, v in evaluation.metrics.items())
            + "".join(
                f" | {name} {gate.metric}={values[gate.metric]:.4f}"
                for name, values in evaluation.baselines.items()
                if gate.metric in values
            )
        )
    for warning in evaluation.warnings:
        note("evaluate", warning, ok=False)
    note("gate", gate.reason, ok=gate.passed)
    if champion is not None and champion.champion is not None and champion.passed:
        note("champion", champion.reason, ok=True)
    run = open_run(plan, run_name=f"{plan.name}-{plan.hash}", run_id=training.tracker_run_id)
    try:
        run.log_metrics(_metric_names("test", evaluation.metrics))
        run.log_metrics(_metric_names("baseline", evaluation.baseline_metrics))
        for name, values in evaluation.baselines.items():
            run.log_metrics(_metric_names(f"baseline_{name}", values))
        run.log_metrics({"gate_passed": float(gate.passed)})
        if gate.lift is not None:
            run.log_metrics({"gate_lift": gate.lift})
        if gate.interval is not None:
            run.log_metrics({"gate_lift_low": gate.interval.low, "gate_lift_high": gate.interval.high})
        run.set_tags({"rscale.gate": "passed" if gate.passed else "failed", "rscale.baseline": evaluation.baseline})
        run.log_dict("evaluation.json", evaluation.model_dump(mode="json"))
    finally:
        run.close()
    return evaluation.model_copy(
        update={"champion": champion, "tracker_errors": list(training.tracker_errors) + list(run.errors)}
    )


@step
def register_model(
    model_package: PackageDir, training: Training, evaluation: Evaluation, plan: Plan, fingerprint: str
) -> Annotated[Registration, "registration"]:
    """Record the version in ZenML's model registry with its metrics, plan hash and data fingerprint."""
    from rscale.trackers import open_run

    gate = evaluation.gate
    metadata = {
        "metrics": evaluation.metrics,
        "baseline": evaluation.baseline,
        "baseline_metrics": evaluation.baseline_metrics,
        "gate_passed": gate.passed,
        "gate_reason": gate.reason,
        "plan_hash": plan.hash,
        "data_fingerprint": fingerprint,
        "package_version": model_package.manifest().get("version", plan.hash),
    }
    log_metadata(metadata=metadata, infer_model=True)
    model = get_step_context().model
    stage = None
    if gate.passed:
        model.set_stage("production", force=True)
        stage = "production"
    note("register", f"model {model.name} version {model.version}" + (f" -> {stage}" if stage else " (not promoted)"))
    package_uri = get_step_context().inputs["model_package"][0].uri  # where the artifact store keeps it
    run = open_run(plan, run_name=f"{plan.name}-{plan.hash}", run_id=training.tracker_run_id)
    try:
        run.log_link("model_package", package_uri)
        run.set_tags({"rscale.model_version": f"{model.name}:{model.version}"})
    finally:
        run.close()
    return Registration(model_name=model.name, version=str(model.version), stage=stage)
