"""`monitor`: the thresholds `rs monitor` checks; crossing one makes it exit with MONITOR_ALARM_EXIT_CODE.

Drift compares the deployed version's training split with the requests served in the window; the live
metric comes from predictions whose outcome has landed (see `feedback`).
"""

from pydantic import Field

from rscale.compiler.spec.base import Block
from rscale.compiler.spec.feedback import Duration
from rscale.errors import EXIT_MONITOR_ALARM

MONITOR_ALARM_EXIT_CODE = EXIT_MONITOR_ALARM


class MonitorSpec(Block):
    """Thresholds for the live model: drift of inputs and predictions, the live metric, errors."""

    window: Duration = Field("7d", description="Default window of `rs monitor` (its --since): 90s, 30m, 2h, 7d.")
    max_psi: float = Field(
        0.2,
        ge=0,
        description="Largest population stability index of any input, training vs served (0.2: a real shift).",
    )
    max_oov_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Largest rise of the out-of-vocabulary share of a categorical or sequence input over its share "
        "in training.",
    )
    max_prediction_psi: float = Field(0.2, ge=0, description="Largest PSI of the prediction distribution.")
    max_metric_drop: float = Field(
        0.25,
        ge=0,
        description="Largest relative drop of the live metric below the deployed version's test metric (0.25: 25%).",
    )
    min_outcomes: int = Field(
        50, ge=1, description="Landed outcomes needed before the live metric is judged against `max_metric_drop`."
    )
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Largest share of requests that failed, where the endpoint's log records them."
    )
    bins: int = Field(
        10, ge=2, le=100, description="Quantile bins of numeric inputs for PSI, cut on the training data."
    )
