"""The one interface every tracker kind gives the stages: a run that takes params, metrics, tags and artifacts.

Logging never raises into training: a failed call is caught, kept in `errors` and reported at `close`, and
after a few failures in a row the run stops calling the backend so a dead server cannot stall training.
Opening a new run and `preflight` do raise (RscaleError): they happen before training starts.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

log = logging.getLogger("rscale.trackers")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

STATUSES = ("FINISHED", "FAILED", "KILLED")
MAX_FAILURES_IN_A_ROW = 3  # then stop calling the backend: each call to a dead server can cost seconds of retries


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to one level with dotted keys (`train.lr`). Lists stay values; trackers store them as text."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def as_text(value: Any) -> str:
    """How a param value reads in a tracker that stores text: JSON for containers and None, str otherwise."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def describe(exc: BaseException) -> str:
    """`Type: first real line` of an exception, without the colour codes and banners Neptune's carry."""
    lines = (ANSI.sub("", line).strip() for line in str(exc).splitlines())
    text = next((line for line in lines if line and not line.startswith("---")), "")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def new_run_id() -> str:
    return uuid.uuid4().hex


class TrackerRun:
    """One tracked run. Subclasses implement the `_`-prefixed hooks; the public methods never raise.

    `run_id` re-opens the run from another step or process (`rscale.trackers.open_run(..., run_id=...)`);
    `url` is a link a person can open now, or None (local stores, offline modes).
    """

    kind: ClassVar[str] = "base"

    def __init__(self, run_id: str, url: str | None = None, redact: tuple[str, ...] = ()) -> None:
        self.run_id = run_id
        self.url = url
        self.closed = False
        self._redact = tuple(secret for secret in redact if secret)
        self._failures: dict[str, int] = {}
        self._in_a_row = 0
        self._skipped = 0
        self._gave_up: str | None = None  # why later calls are skipped

    # -- opening, per kind ---------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, plan: Plan, run_name: str, tags: dict[str, str] | None = None, run_id: str | None = None
    ) -> TrackerRun:
        """Start a run (run_id None) or re-open one. Raises RscaleError when the tracker cannot be used."""
        raise NotImplementedError

    @classmethod
    def preflight(cls, plan: Plan) -> None:
        """Raise RscaleError, with the fix, when the tracker cannot be reached or configured. Starts no run."""
        raise NotImplementedError

    # -- the interface the stages call; none of these raise ----------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = flatten(params)
        if flat:
            self._attempt("log_params", self._log_params, flat)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values: dict[str, float] = {}
        for key, value in flatten(metrics).items():
            try:
                values[key] = float(value)  # also takes 0-d tensors and numpy scalars
            except (TypeError, ValueError):
                self._fail("log_metrics", f"{key}: {type(value).__name__} is not a number")
        if values:
            self._attempt("log_metrics", self._log_metrics, values, step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            self._attempt("set_tags", self._set_tags, {str(k): as_text(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path) -> None:
        """A file or a folder (a model package), kept by the tracker under the path's own name."""
        path = Path(path)
        if not path.exists():
            self._fail("log_artifact", f"{path} does not exist")
            return
        self._attempt("log_artifact", self._log_artifact, path)

    def log_link(self, name: str, uri: str) -> None:
        """Where something lives that the tracker does not copy (a model package on S3, an endpoint)."""
        self._attempt("log_link", self._log_link, name, str(uri))

    def log_dict(self, name: str, data: Any) -> None:
        """A JSON document, e.g. the data check report, stored as `<name>.json` (`checks` and `checks.json` alike)."""
        name = name.removesuffix(".json")
        self._attempt("log_dict", lambda: self._log_dict(name, json.loads(json.dumps(data, default=str))))

    def lightning_logger(self) -> Any:
        """A Lightning logger that writes into this run and never raises into training; None logs nothing."""
        from rscale.trackers.lightning_logger import TrackerLogger

        return TrackerLogger(self)

    def close(self, status: str = "FINISHED") -> None:
        """End the run with MLflow's vocabulary (FINISHED, FAILED, KILLED) and report what failed on the way."""
        if self.closed:
            return
        if status not in STATUSES:
            self._fail("close", f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
            status = "FINISHED"
        gave_up, self._gave_up = self._gave_up, None  # the final status is worth one more try
        self._attempt("close", self._close, status)
        self._gave_up = self._gave_up or gave_up
        self.closed = True
        if self.errors:
            log.warning(
                "tracker %s, run %s: %d logging problem(s), training was not affected:\n  %s",
                self.kind,
                self.run_id,
                len(self.errors),
                "\n  ".join(self.errors),
            )

    @property
    def errors(self) -> list[str]:
        """Every distinct logging failure of this run, with how often it happened."""
        found = [message if count == 1 else f"{message} (x{count})" for message, count in self._failures.items()]
        if self._skipped:
            found.append(f"{self._skipped} logging call(s) skipped: {self._gave_up}")
        return found

    def __enter__(self) -> TrackerRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close("FINISHED")
        else:
            self.close("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.run_id}{' closed' if self.closed else ''}>"

    # -- hooks each kind implements -----------------------------------------------------------------------
    def _log_params(self, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None:
        raise NotImplementedError

    def _set_tags(self, tags: dict[str, str]) -> None:
        raise NotImplementedError

    def _log_artifact(self, path: Path) -> None:
        raise NotImplementedError

    def _log_link(self, name: str, uri: str) -> None:
        raise NotImplementedError

    def _log_dict(self, name: str, data: Any) -> None:
        raise NotImplementedError

    def _close(self, status: str) -> None:
        raise NotImplementedError

    # -- failure bookkeeping --------------------------------------------------------------------------------
    def _attempt(self, what: str, call: Callable[..., None], *args: Any) -> None:
        if self.closed:
            self._fail(what, "the run is closed")
            return
        if self._gave_up:
            self._skipped += 1
            return
        try:
            call(*args)
        except Exception as exc:  # noqa: BLE001 - logging must never end training; the error is kept and reported
            self._fail(what, describe(exc))
            self._in_a_row += 1
            if self._in_a_row >= MAX_FAILURES_IN_A_ROW:
                self._gave_up = f"the tracker failed {MAX_FAILURES_IN_A_ROW} times in a row"
        else:
            self._in_a_row = 0

    def _fail(self, what: str, message: str) -> None:
        text = f"{what}: {message}"
        for secret in self._redact:
            text = text.replace(secret, "***")
        if text not in self._failures:
            log.warning("tracker %s, run %s: %s", self.kind, self.run_id, text)
        self._failures[text] = self._failures.get(text, 0) + 1


class DetachedRun(TrackerRun):
    """Stands in for a run that could not be re-opened after training: the step's work goes on, calls are
    skipped, and the reason shows in `errors`."""

    def __init__(self, kind: str, run_id: str, reason: str) -> None:
        super().__init__(run_id)
        self.kind = kind  # type: ignore[misc]
        self._fail("open", reason)
        self._gave_up = "the run could not be re-opened"

    def lightning_logger(self) -> None:
        return None

    def close(self, status: str = "FINISHED") -> None:
        if not self.closed:  # nothing to close on the backend
            self.closed = True
            log.warning("tracker %s, run %s was not recorded: %s", self.kind, self.run_id, "; ".join(self.errors))
