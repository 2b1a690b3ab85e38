"""`features`: which query columns the model reads, and which it predicts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rscale.compiler.spec.base import Block

FeatureType = Literal["numeric", "categorical", "binary", "sequence", "text"]


class Feature(Block):
    name: str = Field(description="A column the query returns.")
    type: FeatureType = Field(description="How the model reads it.")


class FeaturesSpec(Block):
    inputs: list[Feature] = Field(min_length=1, description="The columns the model reads.")
    target: Feature = Field(description="The column the model predicts.")
    id: str | None = Field(None, description="A key column carried through to predictions (never a model input).")
