"""Preprocessing fitted on the TRAIN split only: vocabularies, normalisation, text hashing.

`Preprocessor.fit` reads the training table as the plan's features describe and gives a typed fitted state
(rscale.models.fitted.FittedState, saved as preprocess.json). Two paths apply that state:
rscale.models.table_encoder.TableEncoder turns Arrow tables into tensors with vectorised pyarrow/numpy
(training, evaluation; its module docstring gives the batch layout), and rscale.serving.codec.RequestCodec
checks request records and turns them into the same tensors, and the output into responses (serving).

Every setting comes from the spec: the model config's own value, or, for a model type without that key,
the default its spec config class declares (`model_setting`), never a default written here.
"""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from pydantic import BaseModel

from rscale.compiler.spec.model import SessionRecConfig, TextConfig
from rscale.compiler.spec.tasks import TASKS, target_kind
from rscale.models.fitted import (
    CategoricalVocabulary,
    FittedState,
    InputColumn,
    NumericStats,
    SequenceVocabulary,
    TargetEncoding,
    TextHashing,
)
from rscale.models.table_encoder import (  # noqa: F401  (re-exported: the tasks, the codec and tests import them here)
    IGNORE_CLASS,
    OOV,
    PAD,
    RESERVED,
    SLICE_ROWS,
    ReadColumn,
    TableEncoder,
    _all_finite,
    _combine,
    _float_slices,
    _value_counts,
    hash_token,
    left_aligned,
    row_ranges,
    run_all,
)
from rscale.models.table_encoder import hash_token as _hash_token  # noqa: F401  (the codec's name for it)

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

MAX_VOCAB = 500_000  # most frequent values kept; the rest map to OOV, so a huge catalogue stays trainable
TEXT_MAX_TOKENS = 128  # tokens of a text input read per row (no spec key sets it; the text model reads all of them)


def model_setting(model: Any, name: str, config: type[BaseModel]) -> Any:
    """The model config's `name`, or, for a model type without that key (a custom module reading a sequence
    or a text input), the default `config` declares for it: every default lives in the spec's config class."""
    if hasattr(model, name):
        return getattr(model, name)
    return config.model_fields[name].get_default(call_default_factory=True)


def _task(kind: str) -> Any:
    """The runtime Task of a target kind (rscale.models.tasks, which imports this module: through the registry)."""
    return TASKS.load(kind)


def _vocabulary(values: pa.Array | pa.ChunkedArray, cap: int = MAX_VOCAB) -> list[str]:
    """Distinct non-null values as strings, most frequent first (ties alphabetical), capped at `cap`."""
    return _vocabulary_of_counts([_value_counts(values)], cap)


def _vocabulary_of_counts(parts: list[pa.StructArray], cap: int = MAX_VOCAB) -> list[str]:
    """The vocabulary of the rows that `parts` (value counts of disjoint row ranges) counted together."""
    if len(parts) == 1:
        tokens, freq = parts[0].field("values"), parts[0].field("counts")
    else:
        merged = (
            pa.table({
                "values": pa.concat_arrays([part.field("values") for part in parts]),
                "counts": pa.concat_arrays([part.field("counts") for part in parts]),
            })
            .group_by("values")
            .aggregate([("counts", "sum")])
        )
        tokens, freq = merged["values"], merged["counts_sum"]
    if len(tokens) == 0:
        return []
    tokens_np = tokens.to_numpy(zero_copy_only=False)
    order = np.lexsort((tokens_np, -freq.to_numpy()))[:cap]
    return [str(t) for t in tokens_np[order]]


def _finite_mean_std(column: pa.ChunkedArray | pa.Array) -> tuple[float, float]:
    """Mean and population std of the finite values: nulls, NaN and inf are left out."""
    if column.type != pa.float64():
        column = pc.cast(column, pa.float64())
    mean, std = pc.mean(column).as_py(), pc.stddev(column, ddof=0).as_py()  # None when every value is null
    if mean is not None and std is not None and math.isfinite(mean) and math.isfinite(std):
        # no NaN or inf among the values (either would make these so): Arrow's kernels, which skip nulls,
        # read the column in place
        return mean, std
    values = column.to_numpy(zero_copy_only=False)
    finite = values[np.isfinite(values)]
    return (float(finite.mean()), float(finite.std())) if len(finite) else (0.0, 1.0)



class Preprocessor:
    """A fitted state (`state`) and its table encoder (`encoder`): fit on the train split, then transform
    tables; save and load as preprocess.json."""

    def __init__(self, state: FittedState) -> None:
        self.state = state
        self.encoder = TableEncoder(state)

    # the fitted state's parts, read by models, baselines and evaluation
    @property
    def task(self) -> Any:
        return self.encoder.task

    @property
    def target(self) -> TargetEncoding:
        return self.state.target

    @property
    def numeric(self) -> tuple[NumericStats, ...]:
        return self.state.numeric

    @property
    def categorical(self) -> tuple[CategoricalVocabulary, ...]:
        return self.state.categorical

    @property
    def sequence(self) -> SequenceVocabulary | None:
        return self.state.sequence

    @property
    def text(self) -> TextHashing | None:
        return self.state.text

    @property
    def vocabularies(self) -> dict[str, list[str]]:
        return self.state.vocabularies

    @property
    def input_names(self) -> list[str]:
        return self.state.input_names

    @property
    def id_column(self) -> str | None:
        return self.state.id

    # --- fitting -----------------------------------------------------------------------------------
    @classmethod
    def fit(cls, plan: Plan, train: pa.Table) -> Preprocessor:
        """Fit vocabularies and statistics on the training table only, as the plan's features describe."""
        return cls._fit(plan, train, keep_rows=False)[0]

    @classmethod
    def fit_transform(cls, plan: Plan, train: pa.Table, with_target: bool = True) -> tuple[Preprocessor, dict[str, torch.Tensor]]:
        """`fit(plan, train)` and its `transform(train)` in one pass over each categorical column: the strings
        are hashed once (dictionary-encoded per row range), counted for the vocabulary and then encoded from
        those indices. The same state and the same tensors as fit then transform, in less time."""
        fitted, read = cls._fit(plan, train, keep_rows=True)
        return fitted, fitted.encoder.transform(train, with_target, read)

    @classmethod
    def _fit(cls, plan: Plan, train: pa.Table, keep_rows: bool) -> tuple[Preprocessor, dict[str, list[ReadColumn]]]:
        """The fit; with `keep_rows`, also each plain categorical input's rows as read, per row range of
        `row_ranges` (for `TableEncoder.transform`'s `read`)."""
        features = plan.features
        missing = [f.name for f in [*features.inputs, features.target] if f.name not in train.column_names]
        if missing:
            from rscale.errors import RscaleError

            raise RscaleError(
                f"the training data has no column(s) {', '.join(missing)} (columns: {', '.join(train.column_names)})",
                fix="make data.query return every column named in features, or rename the features",
            )
        vocabularies: dict[str, list[str]] = {}
        numeric: list[NumericStats] = []
        categorical: list[CategoricalVocabulary] = []
        sequence: SequenceVocabulary | None = None
        text: TextHashing | None = None
        # the vocabularies and statistics are independent reads of the table, computed side by side: value
        # counts (string hashing, the longest) per row range first, then one task per numeric column
        numeric_inputs = [f for f in features.inputs if f.type == "numeric"]
        categorical_inputs = [f for f in features.inputs if f.type == "categorical"]
        ranges = row_ranges(train.num_rows)
        # a dictionary-typed column is encoded through its own dictionary already (see TableEncoder.codes_into)
        kept = [f.name for f in categorical_inputs if keep_rows and not pa.types.is_dictionary(train.schema.field(f.name).type)]
        found = run_all(
            [
                partial(ReadColumn if f.name in kept else _value_counts, train[f.name].slice(a, b - a))
                for f in categorical_inputs
                for a, b in ranges
            ]
            + [partial(_finite_mean_std, train[f.name]) for f in numeric_inputs],
            train.num_rows,
        )
        encoded: dict[str, list[ReadColumn]] = {}
        for i, f in enumerate(categorical_inputs):
            counted = found[i * len(ranges) : (i + 1) * len(ranges)]
            if f.name in kept:
                encoded[f.name] = counted
                counted = [part for rows in counted for part in rows.parts]
            vocabularies[f.name] = _vocabulary_of_counts(counted)
        stats = dict(zip([f.name for f in numeric_inputs], found[len(categorical_inputs) * len(ranges) :], strict=True))
        for feature in features.inputs:
            column = train[feature.name]
            if feature.type in ("numeric", "binary"):
                mean, std = (0.0, 1.0) if feature.type == "binary" else stats[feature.name]
                numeric.append(
                    NumericStats(
                        name=feature.name, mean=mean, std=std if std > 1e-12 else 1.0, binary=feature.type == "binary"
                    )
                )
            elif feature.type == "categorical":
                categorical.append(CategoricalVocabulary(name=feature.name, vocab=feature.name))
            elif feature.type == "sequence":
                max_len = model_setting(plan.model, "max_len", SessionRecConfig)
                sequence = SequenceVocabulary(name=feature.name, vocab=feature.name, max_len=int(max_len))
                items = pc.list_flatten(_combine(column))
                if features.target.type == "categorical" and _task(target_kind(plan.task, "categorical")).shares_item_space:
                    # one item space: the history and the next item share embeddings and the output layer
                    items = pa.concat_arrays(
                        [items.cast(pa.string()), _combine(train[features.target.name]).cast(pa.string())]
                    )
                vocabularies[feature.name] = _vocabulary(items)
            elif feature.type == "text":
                text = TextHashing(
                    name=feature.name,
                    buckets=int(model_setting(plan.model, "buckets", TextConfig)),
                    max_tokens=TEXT_MAX_TOKENS,
                )
        kind = target_kind(plan.task, features.target.type)
        # the task fits what its encoding needs (classes, mean and std, or an item vocabulary it may add)
        fitted_target = _task(kind).fit_target(train[features.target.name], vocabularies, sequence)
        state = FittedState(
            inputs=tuple(InputColumn(name=f.name, type=f.type) for f in features.inputs),
            id=features.id,
            numeric=tuple(numeric),
            categorical=tuple(categorical),
            sequence=sequence,
            text=text,
            target=TargetEncoding(name=features.target.name, kind=kind, **fitted_target),
            vocabularies=vocabularies,
            top_k=int(model_setting(plan.model, "top_k", SessionRecConfig)),
        )
        return cls(state), encoded

    # --- saving ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """preprocess.json's content."""
        return self.state.to_json()

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Preprocessor:
        return cls(FittedState.from_json(state))

    def save(self, path: Path) -> None:
        """Write the fitted state to `path` (preprocess.json)."""
        path.write_text(json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: Path) -> Preprocessor:
        """The preprocessor a preprocess.json holds."""
        return cls.from_dict(json.loads(path.read_text()))

    def shapes(self) -> dict[str, Any]:
        """Sizes a module needs to build its layers (embedding tables, input widths, outputs)."""
        state, target = self.state, self.state.target
        outputs = self.task.shapes(target, state.vocabularies)
        return {
            "n_numeric": len(state.numeric),
            "categorical_sizes": [len(state.vocabularies[c.vocab]) + RESERVED for c in state.categorical],
            "sequence_vocab": len(state.vocabularies[state.sequence.vocab]) + RESERVED if state.sequence else 0,
            "max_len": state.sequence.max_len if state.sequence else 0,
            "text_buckets": state.text.buckets if state.text else 0,
            "n_items": outputs["n_items"],
            "n_classes": outputs["n_classes"],
            "target_kind": self.task.kind,
            "target_mean": target.mean if target.mean is not None else 0.0,
            "target_std": target.std if target.std is not None else 1.0,
        }

    # --- tables -> tensors: the encoder's ------------------------------------------------------------
    def transform(self, table: pa.Table, with_target: bool = True) -> dict[str, torch.Tensor]:
        """The table as tensors (TableEncoder.transform)."""
        return self.encoder.transform(table, with_target)

    def transform_target(self, column: pa.ChunkedArray | pa.Array) -> torch.Tensor:
        return self.encoder.transform_target(column)

    def target_values(self, column: pa.Array) -> np.ndarray:
        """The target as metrics read it: class/item index, 0/1, or the raw regression value."""
        return self.encoder.target_values(column)
