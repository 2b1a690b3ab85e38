"""The one ZenML pipeline every spec runs: load (check, query, split) -> train -> evaluate -> register -> deploy.

It is a top-level function that takes the Plan, so any orchestrator process can import it; the emitted
`build/<name>/pipeline.py` applies the stack's options (step operator, Docker settings) and runs it. The
load step stores the query's table once with the split as row indices; the later steps take their parts
by index.
"""

from __future__ import annotations

from zenml import pipeline
from zenml.enums import ExecutionMode

from rscale.compiler.plan import Plan
from rscale.stages.data import load_data
from rscale.stages.deploy import deploy_model
from rscale.stages.model import evaluate_model, register_model, train_model


# Fail fast: a failed step's own exception (a failed data check's DataCheckFailed, exit 3) reaches `rs run`,
# not ZenML's "failure in step(s)" RuntimeError, which the default (continue on failure) raises instead.
@pipeline(enable_cache=True, execution_mode=ExecutionMode.FAIL_FAST)
def use_case_pipeline(plan: Plan, fingerprint: str, deploy: bool = True, resume: bool = False) -> None:
    examples, report = load_data(
        checks=list(plan.checks),
        data=plan.data,
        warehouse=plan.stack.warehouse,
        fingerprint=fingerprint,
        split=plan.split,
        seed=plan.train.seed,
        id_column=plan.features.id,
    )
    package, training = train_model(examples, plan=plan, check_report=report, fingerprint=fingerprint, resume=resume)
    evaluation = evaluate_model(package, training, examples, plan=plan)
    register_model(package, training, evaluation, plan=plan, fingerprint=fingerprint)
    if deploy:  # sweep members are not deployed; their best is, from best.yaml
        deploy_model(package, evaluation, examples, plan=plan)
