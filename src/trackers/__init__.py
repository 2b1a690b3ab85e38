"""Experiment tracking behind one interface: `open_run` gives a TrackerRun for the plan's `tracker.kind`.

Kinds (registered in `rscale.compiler.spec.tracker`): `mlflow` (default; SQLite under `.rs/`), `neptune`
(neptune 1.x client; own server, offline or debug), `none`. The train step opens the run, evaluate and register
re-open it by `run_id`, in this process or another. This module stays light: mlflow and neptune are imported
only by their own modules, when a run of that kind is opened.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rscale.trackers.base import DetachedRun, TrackerRun, describe, flatten

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

__all__ = [
    "SWEEP_ID_TAG",
    "TrackerRun",
    "ZENML_RUN_ID_TAG",
    "flatten",
    "open_run",
    "plan_params",
    "preflight",
]

log = logging.getLogger("rscale.trackers")

# Tags the stages pass to open_run, so a tracker's run and ZenML's run find each other.
ZENML_RUN_ID_TAG = "rscale.zenml_run_id"
SWEEP_ID_TAG = "rscale.sweep_id"


def tracker_class(plan: Plan) -> type[TrackerRun]:
    from rscale.compiler.spec.tracker import TRACKERS

    kind: str = plan.tracker.kind  # type: ignore[attr-defined]  # every member of the union has `kind`
    return TRACKERS.load(kind)  # type: ignore[no-any-return]


def preflight(plan: Plan) -> None:
    """Raise rscale.errors.RscaleError, with the fix, when the plan's tracker cannot be reached or configured.

    Call before training: a bad URI, a server that does not answer or a missing token fail here, not mid-fit.
    """
    tracker_class(plan).preflight(plan)


def plan_params(plan: Plan) -> dict[str, Any]:
    """The resolved plan as flat params (`train.lr`, `model.hidden`, ...). Secrets are references in a plan."""
    return flatten(plan.model_dump(mode="json", by_alias=True, exclude={"hash"}))


def open_run(plan: Plan, run_name: str, tags: dict[str, str] | None = None, run_id: str | None = None) -> TrackerRun:
    """Start a run for `plan`, or re-open the run `run_id` that an earlier step started.

    A new run gets the plan's params, the plan itself as `plan.json`, and the tags `rscale.plan`,
    `rscale.plan_hash` and `tags` (pass ZENML_RUN_ID_TAG and SWEEP_ID_TAG). Starting raises RscaleError when
    the tracker cannot be used; re-opening does not (training is done by then): it returns a run whose calls
    are skipped and whose `errors` say why.
    """
    tracker = tracker_class(plan)
    if run_id is not None:
        try:
            return tracker.open(plan, run_name=run_name, tags=tags, run_id=run_id)
        except Exception as exc:  # noqa: BLE001 - the step's own work must not be lost to the tracker
            log.warning("tracker %s: run %s cannot be re-opened: %s", tracker.kind, run_id, describe(exc))
            return DetachedRun(tracker.kind, run_id, describe(exc))
    standard = {"rscale.plan": plan.name, "rscale.plan_hash": plan.hash, "rscale.spec_file": plan.spec_file}
    run = tracker.open(plan, run_name=run_name, tags={**standard, **(tags or {})})
    run.log_params(plan_params(plan))
    run.log_dict("plan", plan.model_dump(mode="json", by_alias=True))
    return run
