"""`feedback`: how the outcome of a logged prediction is found in the warehouse.

The endpoint logs every prediction with its request; `feedback` says which warehouse rows tell what
happened next for that request, so the live model can be scored (`rs monitor`) and the next run can train on
served predictions and their outcomes (the `<name>_outcomes` view). Either an outcome table (a key, a time
column, the outcome and a horizon) or an outcome query returning the same three columns, written in the
spec's SQL dialect and run in the warehouse.
"""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from rscale.compiler.spec.base import Block, spec_value_error

DURATION = re.compile(r"^([1-9][0-9]{0,6})(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """`90s`, `30m`, `2h`, `7d` -> seconds. ValueError names the accepted form."""
    match = DURATION.match(text.strip())
    if not match:
        raise ValueError(f"`{text}` is not a duration; write a whole number and a unit: 90s, 30m, 2h or 7d")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _duration(text: str) -> str:
    try:
        duration_seconds(text)
    except ValueError as exc:
        raise spec_value_error(str(exc), "e.g. horizon: 1h") from None
    return text.strip()


Duration = Annotated[
    str,
    AfterValidator(_duration),
    Field(json_schema_extra={"pattern": DURATION.pattern, "examples": ["30m", "1h", "7d"]}),
]

OUTCOME_COLUMNS = ("outcome_key", "outcome", "outcome_time")


class FeedbackSpec(Block):
    """Where the outcome of each served prediction lands: a table with a key, a time column and a horizon, or a query."""

    query: str | None = Field(
        None,
        description="An outcome query in `data.dialect`, one row per outcome, with the columns `outcome_key` (equal "
        "to the request's `features.id`), `outcome` and `outcome_time`. Use it instead of `table`.",
    )
    table: str | None = Field(None, description="The table where outcomes land, e.g. `events`.")
    key: str | None = Field(
        None, description="Column of `table` equal to the request's `features.id` value (default: the same name)."
    )
    time_column: str | None = Field(None, description="Column of `table` with the time the outcome happened (UTC).")
    outcome: str | None = Field(
        None,
        description="Column of `table`, or a SQL expression over it, giving the outcome: the item viewed next, "
        "1 for a purchase.",
    )
    where: str | None = Field(None, description="SQL condition on `table` rows that count as outcomes.")
    horizon: Duration = Field(
        "1d", description="How long after a prediction an outcome still counts for it: 90s, 30m, 2h, 7d."
    )
    pick: Literal["first", "max"] = Field(
        "first",
        description="Which outcome counts when several land within the horizon: the `first` in time (the next "
        "item viewed) or the `max` value (any purchase).",
    )
    missing: float | str | None = Field(
        None,
        description="The outcome of a prediction whose horizon has passed with no outcome row (e.g. 0: no purchase). "
        "Without it such a prediction stays unlabelled.",
    )

    retention: Duration | None = Field(
        None,
        description="Delete prediction log files last written longer ago than this, once every line of them is in "
        "the warehouse (`<name>_predictions`). Without it the files are kept.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> "FeedbackSpec":
        if (self.query is None) == (self.table is None):
            raise spec_value_error(
                "feedback needs exactly one of `query` or `table`",
                "give `table`, `time_column` and `outcome` (and `key` when it differs from features.id), "
                "or a `query` returning outcome_key, outcome, outcome_time",
            )
        if self.table is not None:
            absent = [name for name in ("time_column", "outcome") if getattr(self, name) is None]
            if absent:
                raise spec_value_error(
                    f"feedback.table needs {' and '.join(f'`{a}`' for a in absent)}",
                    "e.g. feedback: {table: events, time_column: event_time, outcome: item_id, horizon: 1h}",
                )
        elif any(getattr(self, name) is not None for name in ("key", "time_column", "outcome", "where")):
            raise spec_value_error(
                "feedback.query returns its own outcome_key, outcome and outcome_time: drop key/time_column/outcome/where",
                "move the conditions into the query",
            )
        return self

    @property
    def horizon_seconds(self) -> int:
        return duration_seconds(self.horizon)

    @property
    def retention_seconds(self) -> int | None:
        return duration_seconds(self.retention) if self.retention else None

    def outcomes_sql(self, id_column: str) -> str:
        """The outcome query in the spec's dialect: one row per outcome, columns OUTCOME_COLUMNS."""
        if self.query is not None:
            return self.query.strip().rstrip(";")
        where = f"\nWHERE {self.where}" if self.where else ""
        return (
            f"SELECT {self.key or id_column} AS outcome_key, {self.outcome} AS outcome, "
            f"{self.time_column} AS outcome_time\nFROM {self.table}{where}"
        )
