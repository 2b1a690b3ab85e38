"""`tracker.kind: mlflow`, the default: a SQLite store under `.rs/`, or any tracking URI the spec or stack gives.

The URI is `tracker.tracking_uri` from the spec, else the stack's `tracker.mlflow_tracking_uri`, else
`sqlite:///.rs/mlflow.db` with artifacts under `.rs/mlartifacts/`. Runs are driven through `MlflowClient`
by id, never the fluent `mlflow.start_run` globals, so a step in another process can re-open the same run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from rscale import paths
from rscale.errors import RscaleError
from rscale.references import is_reference, resolve
from rscale.trackers.base import TrackerRun, as_text, describe

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

# MLflow's own limits (mlflow.utils.validation); longer values are cut rather than rejected.
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000
LINK_TAG_PREFIX = "rscale.link."
PREFLIGHT_TIMEOUT_S = "5"
RUN_RETRIES = "2"
RUN_TIMEOUT_S = "30"


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go, and which setting said so (for error messages)."""

    uri: str
    source: str
    artifact_root: Path | None  # set for file-backed stores, which would otherwise write ./mlruns in the cwd

    @property
    def shown(self) -> str:
        """The URI without a password, fit for messages and logs."""
        parts = urlsplit(self.uri)
        if parts.password:
            netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
        return self.uri

    @property
    def is_http(self) -> bool:
        return self.uri.startswith(("http://", "https://"))


def tracking_target(plan: Plan) -> TrackingTarget:
    """Resolve the tracking URI at run time: the spec's, else the stack's, else the local store under .rs/."""
    spec_uri = getattr(plan.tracker, "tracking_uri", None)
    stack_uri = plan.stack.tracker.mlflow_tracking_uri
    if spec_uri:
        where, uri = "tracker.tracking_uri in the spec", spec_uri
    elif stack_uri:
        where, uri = f"tracker.mlflow_tracking_uri in stack `{plan.stack.name}`", stack_uri
    else:
        state = paths.state_dir()
        return TrackingTarget(f"sqlite:///{state / 'mlflow.db'}", "the local store under .rs/", state / "mlartifacts")
    if is_reference(uri):
        uri = resolve(uri, where.split(" in ")[0])
    file_backed = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    return TrackingTarget(uri, where, paths.state_dir() / "mlartifacts" if file_backed else None)


@contextmanager
def _fail_fast() -> Iterator[None]:
    """No retries and a short timeout: preflight should answer in seconds, not after MLflow's minutes of backoff."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = PREFLIGHT_TIMEOUT_S
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _unreachable(target: TrackingTarget, exc: BaseException) -> RscaleError:
    return RscaleError(
        f"MLflow tracking store {target.shown} (from {target.source}) cannot be used: {describe(exc)}",
        fix=(
            "start the tracking server, or fix the URI; or drop tracker.tracking_uri to use the local store "
            "under .rs/, or set tracker={kind:none} to run without tracking"
        ),
    )


def _experiment_name(plan: Plan) -> str:
    return getattr(plan.tracker, "experiment", None) or plan.name


def _experiment_id(client: MlflowClient, name: str, target: TrackingTarget) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = (target.artifact_root / name).as_uri() if target.artifact_root else None
        try:
            return client.create_experiment(name, artifact_location=location)
        except Exception:  # noqa: BLE001 - a parallel sweep member may have created it first
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise RscaleError(
            f"MLflow experiment `{name}` in {target.shown} is deleted",
            fix="restore it in the MLflow UI, or set tracker.experiment to another name",
        )
    return experiment.experiment_id


def _run_url(target: TrackingTarget, experiment_id: str, run_id: str) -> str | None:
    if not target.is_http:
        return None
    return f"{target.shown.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


class MlflowTracker(TrackerRun):
    """An MLflow run driven by id through MlflowClient."""

    kind = "mlflow"

    def __init__(self, client: MlflowClient, run_id: str, experiment_id: str, target: TrackingTarget) -> None:
        parts = urlsplit(target.uri)
        super().__init__(run_id, _run_url(target, experiment_id, run_id), redact=(parts.password or "",))
        self.client = client
        self.experiment_id = experiment_id
        self.target = target

    @classmethod
    def preflight(cls, plan: Plan) -> None:
        target = tracking_target(plan)
        if target.artifact_root is not None:
            try:
                target.artifact_root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _unreachable(target, exc) from None
        try:
            with _fail_fast():
                MlflowClient(tracking_uri=target.uri).search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - every failure here means the same: not usable
            raise _unreachable(target, exc) from None

    @classmethod
    def open(
        cls, plan: Plan, run_name: str, tags: dict[str, str] | None = None, run_id: str | None = None
    ) -> MlflowTracker:
        target = tracking_target(plan)
        client = MlflowClient(tracking_uri=target.uri)
        # Mid-run, a dead server costs at most ~6 s a call (MLflow's default is minutes of backoff), and the
        # run gives up after a few failures in a row; an explicit setting in the environment wins.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", RUN_RETRIES)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", RUN_TIMEOUT_S)
        try:
            with _fail_fast():  # opening happens before training: answer in seconds
                return cls._open(client, target, plan, run_name, tags, run_id)
        except RscaleError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _unreachable(target, exc) from None

    @classmethod
    def _open(
        cls,
        client: MlflowClient,
        target: TrackingTarget,
        plan: Plan,
        run_name: str,
        tags: dict[str, str] | None,
        run_id: str | None,
    ) -> MlflowTracker:
        if run_id is None:
            experiment_id = _experiment_id(client, _experiment_name(plan), target)
            info = client.create_run(experiment_id, run_name=run_name).info
        else:
            info = client.get_run(run_id).info
            if info.status != "RUNNING":
                client.update_run(run_id, status="RUNNING")
        run = cls(client, info.run_id, info.experiment_id, target)
        if tags:
            run.set_tags(tags)
        return run

    def _log_params(self, params: dict[str, Any]) -> None:
        batch = [Param(key, as_text(value)[:MAX_PARAM_VALUE]) for key, value in params.items()]
        for start in range(0, len(batch), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=batch[start : start + PARAMS_PER_BATCH])

    def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(key, value, now, step or 0) for key, value in metrics.items()]
        for start in range(0, len(batch), METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=batch[start : start + METRICS_PER_BATCH])

    def _set_tags(self, tags: dict[str, str]) -> None:
        batch = [RunTag(key, value[:MAX_TAG_VALUE]) for key, value in tags.items()]
        for start in range(0, len(batch), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, tags=batch[start : start + PARAMS_PER_BATCH])

    def _log_artifact(self, path: Path) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
        else:
            self.client.log_artifact(self.run_id, str(path))

    def _log_link(self, name: str, uri: str) -> None:
        self.client.set_tag(self.run_id, LINK_TAG_PREFIX + name, uri[:MAX_TAG_VALUE])

    def _log_dict(self, name: str, data: Any) -> None:
        self.client.log_dict(self.run_id, data, f"{name}.json")

    def _close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)
