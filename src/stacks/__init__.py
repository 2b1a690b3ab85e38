"""Stacks at run time: register a stack's YAML in ZenML, pick the active one, and say how a plan runs on it.

Light to import: ZenML is imported only by the functions that talk to it (registration).
"""

from __future__ import annotations

from rscale.references import missing_variables, resolve_stack
from rscale.stacks.active import active_stack_name, set_active_stack
from rscale.stacks.containers import docker_settings, image_requirements, serving_image, step_image, write_build_context
from rscale.stacks.integrations import integration_problems, missing_integrations
from rscale.stacks.options import TRAIN_STEP, pipeline_options
from rscale.stacks.registration import activate_zenml_stack, ensure_registered, register

__all__ = [
    "TRAIN_STEP",
    "activate_zenml_stack",
    "active_stack_name",
    "docker_settings",
    "ensure_registered",
    "image_requirements",
    "integration_problems",
    "missing_integrations",
    "missing_variables",
    "pipeline_options",
    "register",
    "resolve_stack",
    "serving_image",
    "set_active_stack",
    "step_image",
    "write_build_context",
]
