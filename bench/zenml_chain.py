"""Trivial ZenML pipelines for the orchestration fit: `chain(length)` runs `length` one-line steps in a row.

Steps and the pipeline are top-level (ZenML needs them importable by any process). Import this module only
after `rscale.paths.use_project_state()`, so ZenML's store lives in the benchmark's temporary project.
"""

from __future__ import annotations

from zenml import pipeline, step


@step(enable_cache=False)
def passthrough(value: int) -> int:
    """One unit of trivial work: what is left of a step's time is the orchestrator's."""
    return value + 1


@pipeline(enable_cache=False)
def chain(length: int) -> None:
    value = passthrough(0)
    for _ in range(length - 1):
        value = passthrough(value)


def plain_chain(length: int) -> int:
    """The same steps as plain calls of the step functions."""
    value = 0
    for _ in range(length):
        value = passthrough.entrypoint(value)
    return value
