"""The fitted preprocessing state, typed: what `Preprocessor.fit` learns from the train split, one record per
column kind, and the whole of it as `FittedState`, which is preprocess.json.

`rscale.models.table_encoder.TableEncoder` applies it to Arrow tables (training, evaluation);
`rscale.serving.codec.RequestCodec` applies it to request records (serving). Both read these records, so a
statistic or a vocabulary has one name and one type everywhere. Frozen: a fitted state never changes after
the fit. The JSON form (`FittedState.to_json`) is the one preprocess.json has always had, so packages
written before these records load unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_serializer
from pydantic_core.core_schema import SerializerFunctionWrapHandler

PREPROCESS_FORMAT = 1


class _Fitted(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputColumn(_Fitted):
    """A model input as the spec's features declared it (preprocess.json's `inputs`)."""

    name: str
    type: str


class NumericStats(_Fitted):
    """A numeric or binary input's standardisation: (x - mean) / std; nulls, NaN and inf read as the mean.
    A binary input keeps mean 0 and std 1 (0/1 as it is)."""

    name: str
    mean: float
    std: float
    binary: bool


class CategoricalVocabulary(_Fitted):
    """A categorical input, coded through the vocabulary named `vocab` (a key of `FittedState.vocabularies`):
    0 padding, 1 out-of-vocabulary, 2.. the vocabulary's values in order."""

    name: str
    vocab: str


class SequenceVocabulary(_Fitted):
    """A list input (a session's items), coded through `vocab`; the last `max_len` items are kept."""

    name: str
    vocab: str
    max_len: int


class TextHashing(_Fitted):
    """A text input: lower-cased word tokens hashed (crc32) into `buckets`; the first `max_tokens` kept."""

    name: str
    buckets: int
    max_tokens: int


class TargetEncoding(_Fitted):
    """The target column and what its task (`kind`, a `rscale.models.tasks.Task`) fitted for it: `classes`
    (multiclass), `mean` and `std` (regression), or `vocab` (next-item ranking: the item vocabulary).

    The fields a task does not use stay None and are left out of the JSON, as preprocess.json always had it.
    """

    name: str
    kind: str
    classes: tuple[str, ...] | None = None
    mean: float | None = None
    std: float | None = None
    vocab: str | None = None

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class FittedState(_Fitted):
    """Everything a fit learned, what preprocess.json holds: per-kind column records, the vocabularies
    they name, the target's encoding and the ranking response's `top_k`."""

    format: Literal[1] = 1  # PREPROCESS_FORMAT
    inputs: tuple[InputColumn, ...]
    id: str | None = None
    numeric: tuple[NumericStats, ...] = ()
    categorical: tuple[CategoricalVocabulary, ...] = ()
    sequence: SequenceVocabulary | None = None
    text: TextHashing | None = None
    target: TargetEncoding
    vocabularies: dict[str, list[str]]
    top_k: int

    @property
    def input_names(self) -> list[str]:
        return [column.name for column in self.inputs]

    def to_json(self) -> dict[str, Any]:
        """preprocess.json's content (plain JSON types)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FittedState:
        """The state a preprocess.json holds; a malformed one raises pydantic's ValidationError naming the key."""
        return cls.model_validate(data)
