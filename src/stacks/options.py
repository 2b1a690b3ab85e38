"""`pipeline.with_options(...)` arguments for a plan on its stack: where the train step runs, and in what image.

Plain JSON-able data, because the compiler writes it into build/<name>/pipeline.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rscale.stacks.components import component_name
from rscale.stacks.containers import docker_settings

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

TRAIN_STEP = "train_model"  # the invocation id of the training step in rscale.stages.pipeline
# ZenML resolves "<component type>.<flavor>" to the stack's component of that flavor.
SAGEMAKER_STEP_OPERATOR_SETTINGS = "step_operator.sagemaker"
SAGEMAKER_ORCHESTRATOR_SETTINGS = "orchestrator.sagemaker"


def pipeline_options(plan: Plan) -> dict[str, Any]:
    """The kwargs for `pipeline.with_options(...)`. Empty on a stack that runs every step on this machine."""
    stack = plan.stack
    if not stack.runs_remotely():
        return {}
    options: dict[str, Any] = {"settings": {"docker": docker_settings(plan)}}
    if stack.step_operator is not None:
        operator = stack.step_operator
        estimator_args: dict[str, Any] = {
            "instance_type": plan.hardware.instance_type,
            "instance_count": 1,  # multi-GPU is DDP on one instance, launched by the train step
            "volume_size": operator.volume_size_gb,
            "max_run": int(operator.max_run_hours * 3600),
            **operator.estimator_args,
        }
        options["steps"] = {
            TRAIN_STEP: {
                "step_operator": component_name(stack.name, "step_operator", operator.flavor),
                "settings": {
                    SAGEMAKER_STEP_OPERATOR_SETTINGS: {
                        "estimator_args": {k: v for k, v in estimator_args.items() if v is not None},
                    }
                },
            }
        }
    elif stack.orchestrator.flavor == "sagemaker" and plan.hardware.instance_type:
        options["steps"] = {
            TRAIN_STEP: {"settings": {SAGEMAKER_ORCHESTRATOR_SETTINGS: {"instance_type": plan.hardware.instance_type}}}
        }
    return options
