"""A Lightning logger over any TrackerRun, so every kind logs training the same way and never raises into it.

Lightning's own MLFlowLogger would raise on a store error mid-fit, and its NeptuneLogger (2.6.4+) is a stub
that raises "Neptune has been sunset"; this one hands each call to the run, which keeps failures in `errors`.
The stage owns the run's lifetime, so `finalize` (end of fit) does not close it: evaluate logs into it next.
"""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING, Any

from lightning_fabric.utilities.logger import _convert_params, _sanitize_callable_params
from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

if TYPE_CHECKING:
    from rscale.trackers.base import TrackerRun

HPARAMS_PREFIX = "hparams"  # the module's save_hyperparameters(), kept apart from the plan's own params


class TrackerLogger(Logger):
    """Lightning's view of a TrackerRun: metrics per step and epoch, and the module's hyperparameters."""

    def __init__(self, run: TrackerRun) -> None:
        super().__init__()
        self._run = run

    @property
    def name(self) -> str:
        return f"rscale-{self._run.kind}"

    @property
    def version(self) -> str:
        return self._run.run_id

    @property
    def experiment(self) -> TrackerRun:
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        try:
            values = _sanitize_callable_params(_convert_params(params))
        except Exception:  # noqa: BLE001 - an odd hyperparameter must not stop the fit
            values = {key: repr(value) for key, value in vars(params).items()} if isinstance(params, Namespace) else {}
        if values:
            self._run.log_params({HPARAMS_PREFIX: values})

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self._run.log_metrics(metrics, step=step)

    def finalize(self, status: str) -> None:
        """End of fit: the run stays open for evaluation; the stage closes it."""
