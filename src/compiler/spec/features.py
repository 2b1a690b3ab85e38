"""`features`: which query columns the model reads, and which it predicts.

A spec may name each input with its type, name bare columns (the type is inferred from the warehouse),
or take `inputs: all` (every column but the id, the target, the time column and `exclude`). Inference
runs in the data contract at compile time (`rscale.compiler.inference`), and the plan holds only the
resolved list (`ResolvedFeatures`), so a run never changes meaning because the table did.
"""

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag

from rscale.compiler.spec.base import Block, no_items

FeatureType = Literal["numeric", "categorical", "binary", "sequence", "text"]


class Feature(Block):
    name: str = Field(description="A column the query returns.")
    type: FeatureType = Field(description="How the model reads it.")


def _feature_shape(value: Any) -> str:
    """Which member a YAML value is meant as, so a mistake is reported once, in that member's terms."""
    return "Feature" if isinstance(value, (dict, Feature)) else "str"


def _inputs_shape(value: Any) -> str:
    return "str" if isinstance(value, str) else "list"  # a mapping reads as a mistaken list


# `{name, type}` or a bare column name (type inferred)
FeatureOrName = Annotated[
    Union[Annotated[Feature, Tag("Feature")], Annotated[str, Tag("str")]], Discriminator(_feature_shape)
]
# `all`, or a list of the above
Inputs = Annotated[
    Union[Annotated[Literal["all"], Tag("str")], Annotated[list[FeatureOrName], Tag("list")]], Discriminator(_inputs_shape)
]


class FeaturesSpec(Block):
    inputs: Inputs = Field(
        "all",
        description="The columns the model reads: `all` (every column but the id, target, time column and "
        "`exclude`), or a list of `{name, type}` mappings and bare column names (type inferred from the warehouse).",
    )
    exclude: list[str] = Field(default_factory=no_items, description="Columns `inputs: all` leaves out.")
    target: FeatureOrName = Field(
        description="The column the model predicts: `{name, type}`, or a bare name (type inferred, and the task with it)."
    )
    id: str | None = Field(None, description="A key column carried through to predictions (never a model input).")

    @property
    def resolved(self) -> bool:
        """Whether every input and the target have a type, so no warehouse is needed to plan."""
        return (
            isinstance(self.inputs, list)
            and all(isinstance(f, Feature) for f in self.inputs)
            and isinstance(self.target, Feature)
            and not self.exclude
        )

    def names(self) -> list[str]:
        """The input column names the spec writes (empty for `all`)."""
        if not isinstance(self.inputs, list):
            return []
        return [f if isinstance(f, str) else f.name for f in self.inputs]

    @property
    def target_name(self) -> str:
        return self.target if isinstance(self.target, str) else self.target.name


class ResolvedFeatures(Block):
    """The features a plan reads: every input and the target with its type, as inferred or written."""

    inputs: list[Feature] = Field(min_length=1, description="The columns the model reads.")
    target: Feature = Field(description="The column the model predicts.")
    id: str | None = Field(None, description="A key column carried through to predictions (never a model input).")
