"""`checks`: data checks, compiled to SQL and run in the warehouse before any training."""

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from rscale.compiler.spec.base import Block


class _Check(Block):
    name: str | None = Field(None, description="A name for the report; defaults to the check's type and column.")
    severity: Literal["error", "warn"] = Field("error", description="`error` stops the run; `warn` only reports.")


class RowCountCheck(_Check):
    type: Literal["row_count"]
    min: int | None = Field(None, ge=0, description="Fewest rows the query may return.")
    max: int | None = Field(None, ge=0, description="Most rows the query may return.")


class NotNullCheck(_Check):
    type: Literal["not_null"]
    columns: list[str] = Field(min_length=1, description="Columns that must have no NULLs.")


class UniqueCheck(_Check):
    type: Literal["unique"]
    columns: list[str] = Field(min_length=1, description="Columns whose combination must be unique.")


class AcceptedValuesCheck(_Check):
    type: Literal["accepted_values"]
    column: str = Field(description="The column whose values are checked (NULLs pass).")
    values: list[str | int | float | bool] = Field(min_length=1, description="The only values the column may hold.")


class RangeCheck(_Check):
    type: Literal["range"]
    column: str = Field(description="A numeric column.")
    min: float | None = Field(None, description="Smallest allowed value.")
    max: float | None = Field(None, description="Largest allowed value.")

    @model_validator(mode="after")
    def _bounded(self) -> "RangeCheck":
        if self.min is None and self.max is None:
            raise ValueError("a range check needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class FreshnessCheck(_Check):
    type: Literal["freshness"]
    column: str = Field(description="A timestamp column.")
    max_age_hours: float = Field(gt=0, description="The newest row must be at most this old.")
    now: str | None = Field(
        None, description="Reference time (ISO 8601) instead of the current time; for replaying old data."
    )


class SqlCheck(_Check):
    type: Literal["sql"]
    sql: str = Field(description="A query over the data (available as the table `data`) returning offending rows.")


Check = Annotated[
    Union[RowCountCheck, NotNullCheck, UniqueCheck, AcceptedValuesCheck, RangeCheck, FreshnessCheck, SqlCheck],
    Field(discriminator="type"),
]
