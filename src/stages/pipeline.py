"""The one ZenML pipeline every spec runs: load -> check -> split -> train -> evaluate -> register -> deploy.

It is a top-level function that takes the Plan, so any orchestrator process can import it; the emitted
`build/<name>/pipeline.py` applies the stack's options (step operator, Docker settings) and runs it.
"""

from __future__ import annotations

from zenml import pipeline

from rscale.compiler.plan import Plan
from rscale.stages.data import check_data, load_data, split_data
from rscale.stages.deploy import deploy_model
from rscale.stages.model import evaluate_model, register_model, train_model


@pipeline(enable_cache=True)
def use_case_pipeline(plan: Plan, fingerprint: str, deploy: bool = True, resume: bool = False) -> None:
    report = check_data(checks=list(plan.checks), warehouse=plan.stack.warehouse, fingerprint=fingerprint)
    table = load_data(data=plan.data, warehouse=plan.stack.warehouse, fingerprint=fingerprint, after=report)
    train, validation, test = split_data(
        table, split=plan.split, time_column=plan.data.time_column, seed=plan.train.seed, id_column=plan.features.id
    )
    package, training = train_model(
        train, validation, plan=plan, check_report=report, fingerprint=fingerprint, resume=resume
    )
    evaluation = evaluate_model(package, training, train, test, plan=plan)
    register_model(package, training, evaluation, plan=plan, fingerprint=fingerprint)
    if deploy:  # sweep members are not deployed; their best is, from best.yaml
        deploy_model(package, evaluation, test, plan=plan)
