"""`tracker.kind: none`: nothing is logged beyond ZenML's own run metadata. Every call is a no-op that succeeds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rscale.trackers.base import TrackerRun, new_run_id

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan


class NoTracker(TrackerRun):
    """A run that records nothing; its id only ties the pipeline's steps together."""

    kind = "none"

    @classmethod
    def preflight(cls, plan: Plan) -> None:
        return None

    @classmethod
    def open(
        cls, plan: Plan, run_name: str, tags: dict[str, str] | None = None, run_id: str | None = None
    ) -> NoTracker:
        return cls(run_id or new_run_id())

    def lightning_logger(self) -> None:
        """None: pass `logger=False` to the Trainer."""
        return None

    def _log_params(self, params: dict[str, Any]) -> None:
        pass

    def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None:
        pass

    def _set_tags(self, tags: dict[str, str]) -> None:
        pass

    def _log_artifact(self, path: Path) -> None:
        pass

    def _log_link(self, name: str, uri: str) -> None:
        pass

    def _log_dict(self, name: str, data: Any) -> None:
        pass

    def _close(self, status: str) -> None:
        pass
