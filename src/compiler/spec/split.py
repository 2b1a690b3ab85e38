"""`split`: a deterministic train/validation/test split, by time, by key or by seeded hash."""

from typing import Literal

from pydantic import Field, model_validator

from rscale.compiler.spec.base import Block


class SplitSpec(Block):
    by: Literal["time", "key", "random"] | None = Field(
        None,
        description="`time`: oldest rows train, newest test. `key`: hash of `column`. `random`: seeded. "
        "Left out: `time` when there is a time column (`column` or data.time_column), else `random`.",
    )
    column: str | None = Field(None, description="Time column for `time`, key column for `key`.")
    validation: float = Field(0.1, gt=0, lt=1, description="Fraction of rows for validation (early stopping).")
    test: float = Field(0.1, gt=0, lt=1, description="Fraction of rows held out for evaluation and the gate.")

    @model_validator(mode="after")
    def _fractions(self) -> "SplitSpec":
        if self.validation + self.test >= 1:
            raise ValueError("validation + test must leave rows for training (sum below 1)")
        return self
