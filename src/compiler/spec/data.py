"""`data`: where the rows come from. The warehouse is picked by the stack unless the spec names one."""

from typing import Literal

from pydantic import Field, model_validator

from rscale.compiler.spec.base import Block


class DataSpec(Block):
    warehouse: Literal["stack", "duckdb", "snowflake"] = Field(
        "stack", description="Which warehouse runs the query. `stack` (default) uses the stack's warehouse."
    )
    dialect: Literal["snowflake", "duckdb"] = Field(
        "snowflake", description="SQL dialect the query is written in; transpiled for the warehouse that runs it."
    )
    query: str | None = Field(None, description="The SQL that returns one row per training example.")
    query_file: str | None = Field(None, description="Path to a .sql file, relative to the spec, instead of `query`.")
    time_column: str | None = Field(
        None, description="Column holding each row's event time; used by time splits and freshness checks."
    )

    @model_validator(mode="after")
    def _one_query(self) -> "DataSpec":
        if (self.query is None) == (self.query_file is None):
            raise ValueError("give exactly one of `query` or `query_file`")
        return self
