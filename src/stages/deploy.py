"""Deploy step: serve the package on the spec's tier when the gate passed, then send one smoke request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow as pa
from zenml import step

from rscale.compiler.plan import Plan
from rscale.data.split import SplitTable
from rscale.models.evaluation import Evaluation
from rscale.stages import materializers  # noqa: F401
from rscale.stages.artifacts import Deployment, PackageDir
from rscale.stages.progress import note, report


def example_request(plan: Plan, examples: SplitTable) -> dict:
    """One request record built from the first held-out (test) row: what a client would send."""
    rows = examples.rows.test[:1]
    row = examples.table.take(pa.array(rows, pa.int64())).to_pylist()[0] if len(rows) else {}
    return {f.name: row.get(f.name) for f in plan.features.inputs}


@step(enable_cache=False)
def deploy_model(
    model_package: PackageDir, evaluation: Evaluation, examples: SplitTable, plan: Plan
) -> Annotated[Deployment, "deployment"]:
    """Deploy only what passed the gate; the deployer makes a re-run of the same plan a no-op."""
    from rscale.serving.endpoint import deployer_for

    if not evaluation.gate.passed:
        note("deploy", "skipped: the model did not pass the gate", ok=False)
        return Deployment(deployed=False, reason="the model did not pass the gate: " + evaluation.gate.reason)
    deployer = deployer_for(plan)
    with report("deploy", f"{plan.serving.tier} endpoint") as status:
        endpoint = deployer.deploy(plan, Path(model_package.path))
        request = example_request(plan, examples)
        response = deployer.predict(plan.name, request)
        status.done(f"{endpoint.url} serving version {endpoint.model_version}")
    return Deployment(
        deployed=True,
        reason="gate passed",
        endpoint=endpoint,
        example_request=request,
        example_response=response,
    )
