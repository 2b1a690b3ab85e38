"""Stacks at run time: register a stack's YAML in ZenML, pick the active one, and say how a plan runs on it.

Light to import: each name below is imported from its module on first use (PEP 562 `__getattr__`), so
`rs validate`, which needs only `active_stack_name`, does not import `containers` (importlib.metadata,
packaging, tomllib) or `registration`; ZenML is imported only by the functions that talk to it (registration).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rscale.references import missing_variables, resolve_stack
    from rscale.stacks.active import active_stack_name, set_active_stack
    from rscale.stacks.containers import (
        docker_settings,
        image_requirements,
        serving_image,
        step_image,
        write_build_context,
    )
    from rscale.stacks.integrations import integration_problems, missing_integrations
    from rscale.stacks.options import TRAIN_STEP, pipeline_options
    from rscale.stacks.registration import activate_zenml_stack, ensure_registered, register

# name -> the module that defines it
_WHERE = {
    "missing_variables": "rscale.references",
    "resolve_stack": "rscale.references",
    "active_stack_name": "rscale.stacks.active",
    "set_active_stack": "rscale.stacks.active",
    "docker_settings": "rscale.stacks.containers",
    "image_requirements": "rscale.stacks.containers",
    "serving_image": "rscale.stacks.containers",
    "step_image": "rscale.stacks.containers",
    "write_build_context": "rscale.stacks.containers",
    "integration_problems": "rscale.stacks.integrations",
    "missing_integrations": "rscale.stacks.integrations",
    "TRAIN_STEP": "rscale.stacks.options",
    "pipeline_options": "rscale.stacks.options",
    "activate_zenml_stack": "rscale.stacks.registration",
    "ensure_registered": "rscale.stacks.registration",
    "register": "rscale.stacks.registration",
}

__all__ = [  # the names of _WHERE (tests/cli/test_import_budget.py checks they agree)
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


def __getattr__(name: str) -> Any:
    """Import `name` from its module the first time it is asked for, and keep it on the package."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
