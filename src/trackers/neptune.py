"""`tracker.kind: neptune`, over the neptune 1.x client (`neptune.init_run`).

Neptune's hosted service shut down on 2026-03-05; the client still works against an organisation's own Neptune
server (modes `async`, `sync`) and without one (`offline`: JSON lines under `.rs/.neptune/offline/`, uploaded
later with `neptune sync --path .rs`; `debug`: in memory only). The API token is read from its reference at run time,
passed to the client and nowhere else.

Field layout: `parameters/<dotted key>`, `metrics/<name>` (series), `tags/<key>` plus `key:value` in
`sys/tags`, `artifacts/<name>`, `links/<name>`, `reports/<name>` (JSON files), `rscale/run_id`, `rscale/status`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rscale import paths
from rscale.compiler.spec.tracker import NeptuneTrackerConfig
from rscale.errors import ConfigurationError, RscaleError
from rscale.references import resolve
from rscale.trackers.base import TrackerRun, as_text, describe, new_run_id

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

SERVER_MODES = ("async", "sync")
MAX_TAG_LENGTH = 128  # Neptune rejects longer entries in sys/tags
PROBE_TIMEOUT_S = 5.0
RUN_ID_FIELD = "rscale/run_id"


def _neptune() -> Any:
    try:
        import neptune
    except ImportError:
        raise ConfigurationError(
            "tracker.kind is neptune, but the neptune client is not installed",
            fix="pip install 'rscale[neptune]' (neptune 1.x), or set tracker={kind:mlflow}",
        ) from None
    return neptune


def data_dir() -> Path:
    """Where the client keeps its queue and offline runs: NEPTUNE_DATA_DIRECTORY, set to `.rs/.neptune` if unset.

    The name must be `.neptune`: `neptune sync --path .rs` looks for a folder of exactly that name.
    """
    os.environ.setdefault("NEPTUNE_DATA_DIRECTORY", str(paths.state_dir() / ".neptune"))
    return Path(os.environ["NEPTUNE_DATA_DIRECTORY"])


def _config(plan: Plan) -> NeptuneTrackerConfig:
    if not isinstance(plan.tracker, NeptuneTrackerConfig):
        raise TypeError(f"plan {plan.name} tracks with {plan.tracker!r}, not neptune")
    return plan.tracker


def _token(config: NeptuneTrackerConfig) -> str | None:
    if config.mode not in SERVER_MODES:
        return None  # offline and debug talk to no server
    return resolve(config.api_token, "tracker.api_token")


def _server_address(token: str) -> str:
    """The server a token belongs to; Neptune tokens are base64 JSON that carry it."""
    from neptune.internal.credentials import Credentials

    try:
        credentials = Credentials.from_token(token)
    except Exception:  # noqa: BLE001 - the token's content must not reach the message
        raise ConfigurationError(
            "tracker.api_token does not hold a Neptune API token (it should be base64 JSON with `api_address`)",
            fix="copy the API token from your Neptune server's user menu into the referenced environment variable",
        ) from None
    return credentials.api_url_opt or credentials.token_origin_address


class NeptuneTracker(TrackerRun):
    """A Neptune run. Re-opening uses `custom_run_id`, so a server resumes the same run from any process;
    offline, each opening writes its own folder, all carrying the same `rscale/run_id`."""

    kind = "neptune"

    def __init__(self, handle: Any, run_id: str, url: str | None, token: str | None) -> None:
        super().__init__(run_id, url, redact=(token or "",))
        self.handle = handle  # the neptune.Run; debug mode's values are read back from it before close

    @classmethod
    def preflight(cls, plan: Plan) -> None:
        _neptune()
        directory = data_dir()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RscaleError(
                f"Neptune's data directory {directory} cannot be created: {exc.strerror}",
                fix="set NEPTUNE_DATA_DIRECTORY to a writable folder",
            ) from None
        config = _config(plan)
        token = _token(config)
        if token is None:
            return
        address = _server_address(token)
        _probe(address, config.project)
        _check_project(config.project, token, address)

    @classmethod
    def open(
        cls, plan: Plan, run_name: str, tags: dict[str, str] | None = None, run_id: str | None = None
    ) -> NeptuneTracker:
        neptune = _neptune()
        data_dir()
        config = _config(plan)
        token = _token(config)
        reopening = run_id is not None
        run_id = run_id or new_run_id()
        try:
            handle = neptune.init_run(
                project=config.project,
                api_token=token,
                mode=config.mode,
                name=run_name,
                custom_run_id=run_id,
                source_files=[],  # the plan is logged; the project's code is not uploaded
                capture_hardware_metrics=config.mode in SERVER_MODES,
                capture_stdout=config.mode in SERVER_MODES,
                capture_stderr=config.mode in SERVER_MODES,
            )
        except Exception as exc:  # noqa: BLE001
            raise RscaleError(
                f"Neptune run for project {config.project} (mode {config.mode}) cannot be "
                f"{'re-opened' if reopening else 'started'}: {describe(exc)}".replace(token or "\0", "***"),
                fix="check the server with `rs` preflight, the project name and the token; "
                "or set +tracker.mode=offline and upload later with `neptune sync`",
            ) from None
        url = None
        if config.mode in SERVER_MODES:
            try:
                url = handle.get_url()
            except Exception:  # noqa: BLE001 - a missing link is not worth failing the run
                url = None
        run = cls(handle, run_id, url, token)
        run._attempt("open", run._mark_open)
        if tags:
            run.set_tags(tags)
        return run

    def _mark_open(self) -> None:
        self.handle[RUN_ID_FIELD] = self.run_id
        self.handle["rscale/status"] = "RUNNING"

    def _log_params(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            kept = value if isinstance(value, (bool, int, float, str)) else as_text(value)
            self.handle[f"parameters/{key}"] = kept

    def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None:
        for key, value in metrics.items():
            if step is None:
                self.handle[f"metrics/{key}"].append(value)
            else:
                self.handle[f"metrics/{key}"].append(value, step=step)

    def _set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.handle[f"tags/{key}"] = value
        labels = [f"{key}:{value}" for key, value in tags.items() if len(key) + len(value) < MAX_TAG_LENGTH]
        if labels:
            self.handle["sys/tags"].add(labels)

    def _log_artifact(self, path: Path) -> None:
        # Offline, Neptune records the path and reads the file at `neptune sync`: keep artifacts where they are.
        if path.is_dir():
            self.handle[f"artifacts/{path.name}"].upload_files(str(path))
        else:
            self.handle[f"artifacts/{path.name}"].upload(str(path))

    def _log_link(self, name: str, uri: str) -> None:
        self.handle[f"links/{name}"] = uri

    def _log_dict(self, name: str, data: Any) -> None:
        from neptune.types import File

        self.handle[f"reports/{name}"].upload(File.from_content(json.dumps(data, indent=2), extension="json"))

    def _close(self, status: str) -> None:
        self.handle["rscale/status"] = status
        if status != "FINISHED":
            self.handle["sys/failed"] = True
        self.handle.stop()


def _probe(address: str, project: str) -> None:
    """Fail in seconds when nothing answers at the server's address (the client itself retries for a minute)."""
    import httpx

    try:
        httpx.get(address, timeout=PROBE_TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise RscaleError(
            f"Neptune server {address} (from tracker.api_token) cannot be reached for project {project}: "
            f"{type(exc).__name__}",
            fix="start or reach your Neptune server (the hosted app.neptune.ai shut down on 2026-03-05); "
            "or set +tracker.mode=offline and upload later with `neptune sync`, or use tracker.kind=mlflow",
        ) from None


def _check_project(project: str, token: str, address: str) -> None:
    """The server answers; now the token and the project must be accepted by it."""
    neptune = _neptune()
    try:
        neptune.init_project(project=project, api_token=token, mode="read-only").stop()
    except Exception as exc:  # noqa: BLE001
        raise RscaleError(
            f"Neptune server {address} does not accept project {project} with this token: {describe(exc)}".replace(
                token, "***"
            ),
            fix="check tracker.project (workspace/project) and that the token belongs to that server",
        ) from None
