"""The request codec: request records -> model tensors, and model output -> response records, for serving.

Built from a package's fitted preprocessing state (preprocess.json, what `Preprocessor.fit` wrote): the
codec only reads it, and every setting it uses (`max_len`, `buckets`, `max_tokens`, `top_k`) is the value
written there from the spec's config, never a default of its own. It is the request side of the model
layer, kept next to the server because only serving reads requests: the training and evaluation side
(fitting, table encoding) stays in rscale.models.preprocess.

Batches are columnar: the records are turned into one tuple of values per field in one pass (C-level
`itemgetter` and `zip`), each field is checked with a constant number of set and numpy operations (the set
of value types it holds, the finite range of the numbers) and encoded with numpy. Only a batch that fails a
check, or holds values the fast checks do not cover (nulls in a categorical field, text), takes the
per-record path, which names every record, field and value that is wrong (`RequestError`).
"""

from __future__ import annotations

import math
import operator
import re
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

import numpy as np
import torch

from rscale.models.fitted import FittedState
from rscale.models.package import RequestError
from rscale.models.preprocess import OOV, PAD, RESERVED, left_aligned
from rscale.models.preprocess import _hash_token as hash_token  # the table path's hashing: both paths agree
from rscale.models.tasks import task_named

TOKEN = re.compile(r"\w+")
MAX_PROBLEMS = 50  # problems listed in one rejection; a huge bad batch gets a bounded answer
_ABSENT = object()  # a missing field, already reported as missing: no type problem on top
_FLOAT_MAX = float(np.finfo(np.float64).max)
_NONE = type(None)
_NUMBER = frozenset({int, float})
_NUMBER_OR_BOOL = frozenset({int, float, bool})
_CATEGORY = frozenset({str, int, bool})
_ITEM = frozenset({str, int})
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 3, 60, 60, 6, 6
_EXPECTED = {
    "numeric": "a number or null",
    "binary": "true/false or 0/1",
    "categorical": "a string or integer",
    "sequence": "a list of item ids (strings or integers)",
    "text": "a string",
}
_SCHEMA_TYPES: dict[str, dict[str, Any]] = {
    "numeric": {"type": ["number", "null"]},
    "binary": {"type": ["boolean", "integer", "null"]},
    "categorical": {"type": ["string", "integer", "null"]},
    "sequence": {"type": "array", "items": {"type": ["string", "integer"]}},
    "text": {"type": ["string", "null"]},
}


@dataclass(frozen=True)
class NumericField:
    """A numeric or binary input, standardised as (x - mean) / std; null reads as the mean."""

    name: str
    mean: float
    std: float
    binary: bool


@dataclass(frozen=True)
class CategoricalField:
    """A categorical input: value (as a string) -> code, OOV for values unseen in training."""

    name: str
    codes: Mapping[str, int]


@dataclass(frozen=True)
class SequenceField:
    """A list of item ids, of which the last `max_len` are kept."""

    name: str
    codes: Mapping[str, int]
    max_len: int


@dataclass(frozen=True)
class TextField:
    """A text input, as hashed lowercase word tokens (the first `max_tokens`) in 1..buckets-1."""

    name: str
    buckets: int
    max_tokens: int


def category_key(value: Any) -> str:
    """A request value as the vocabulary spells it: training reads categories through Arrow's cast to
    string, which writes booleans as `true`/`false` (Python's str would say `True`, never in the vocabulary)."""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _shown(value: Any) -> str:
    """A short repr of a request value for an error message: bounded in length and depth, so a huge or
    deeply nested value neither floods the answer nor overflows the stack."""
    return _SHOWN.repr(value)


def _where(position: int, records: Sequence[Any]) -> str:
    return f"record {position}" if len(records) > 1 else "request"


def _codes(state: FittedState, vocab: str) -> dict[str, int]:
    return {token: i + RESERVED for i, token in enumerate(state.vocabularies[vocab])}


class RequestCodec:
    """Checks and encodes request records, and turns the module's output into responses."""

    def __init__(self, state: FittedState | Mapping[str, Any]) -> None:
        """`state`: a fitted preprocessor's typed state (`Preprocessor.state`), or its JSON (a package's
        preprocess.json, `Preprocessor.to_dict()`), read through the same records the table encoder reads."""
        fitted = state if isinstance(state, FittedState) else FittedState.from_json(dict(state))
        self.inputs: tuple[tuple[str, str], ...] = tuple((f.name, f.type) for f in fitted.inputs)
        self.input_names: tuple[str, ...] = tuple(name for name, _ in self.inputs)
        self.id_column: str | None = fitted.id
        self.numeric = tuple(NumericField(f.name, f.mean, f.std, f.binary) for f in fitted.numeric)
        self.categorical = tuple(CategoricalField(c.name, _codes(fitted, c.vocab)) for c in fitted.categorical)
        sequence, text = fitted.sequence, fitted.text
        self.sequence = SequenceField(sequence.name, _codes(fitted, sequence.vocab), sequence.max_len) if sequence else None
        self.text = TextField(text.name, text.buckets, text.max_tokens) if text else None
        self.task = task_named(fitted.target.kind)  # the response is the target kind's: rscale.models.tasks
        self._responder = self.task.responder(fitted.target, fitted.vocabularies, fitted.top_k)
        self._allowed = frozenset(self.input_names) | ({self.id_column} if self.id_column else frozenset())
        self._required = frozenset(self.input_names)
        self._mean = np.array([f.mean for f in self.numeric], dtype=np.float64)
        self._std = np.array([f.std for f in self.numeric], dtype=np.float64)
        numeric_names = [f.name for f in self.numeric]
        self._numeric_fields = operator.itemgetter(*numeric_names) if len(numeric_names) > 1 else (
            lambda record: (record[numeric_names[0]],)
        )

    @classmethod
    def of(cls, preprocessor: Any) -> RequestCodec:
        """The codec of a fitted `rscale.models.preprocess.Preprocessor`: its typed state, as it is."""
        return cls(preprocessor.state)

    # --- request records -> tensors --------------------------------------------------------------------
    def encode(self, records: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Check and encode request records; raises RequestError listing every problem of every record
        (up to MAX_PROBLEMS), each naming the record and field."""
        if not isinstance(records, list) or not records:
            raise RequestError("expected a non-empty list of records (JSON objects)")
        batch = self._encode_columns(records)
        return batch if batch is not None else self._encode_rows(records)

    def _encode_columns(self, records: list[dict[str, Any]]) -> dict[str, torch.Tensor] | None:
        """The batch, from per-field columns and vectorised checks; None where a check fails or a value
        needs the per-record path (which then says what is wrong, or encodes what the fast checks left)."""
        if self.text or set(map(type, records)) != {dict} or not self._fields_as_expected(records):
            return None  # text is tokenised record by record anyway
        n = len(records)
        batch: dict[str, torch.Tensor] = {}
        try:
            if self.numeric:
                numeric = self._numeric_columns(records)
                if numeric is None:
                    return None
                batch["numeric"] = torch.from_numpy(numeric)
            if self.categorical:
                codes = []
                for c in self.categorical:
                    values = list(map(operator.itemgetter(c.name), records))
                    kinds = set(map(type, values))
                    if kinds == {str}:
                        codes.append(list(map(c.codes.get, values, repeat(OOV))))
                    elif kinds <= _CATEGORY:
                        codes.append(list(map(c.codes.get, map(category_key, values), repeat(OOV))))
                    else:
                        return None  # nulls or wrong types: the per-record path
                batch["categorical"] = torch.from_numpy(np.array(codes, dtype=np.int64).T.copy())
            if self.sequence:
                found = self._sequence_columns(list(map(operator.itemgetter(self.sequence.name), records)), self.sequence)
                if found is None:
                    return None
                batch["sequence"], batch["lengths"] = found
        except KeyError:  # a missing field
            return None
        if not batch:
            batch["numeric"] = torch.zeros((n, 0))
        return batch

    def _numeric_columns(self, records: list[dict[str, Any]]) -> np.ndarray | None:
        """The standardised numeric matrix (float32), or None where a value is not a finite number (or a
        null, or a bool where the field is not binary). One conversion of all numeric fields where every
        value is an int or a float; field by field where nulls or bools need a closer look."""
        n = len(records)
        rows = list(map(self._numeric_fields, records))
        flat = list(chain.from_iterable(rows))
        kinds = set(map(type, flat))
        if kinds <= _NUMBER:
            try:
                # one C-level sum finds NaN and infinities (and a sum too big for a float, which the
                # per-record path then judges value by value)
                if not math.isfinite(sum(flat)):
                    return None
                numeric = np.array(flat, dtype=np.float64).reshape(n, len(self.numeric))
            except (OverflowError, TypeError, ValueError):
                return None
            return ((numeric - self._mean) / self._std).astype(np.float32)
        numeric = np.empty((n, len(self.numeric)), dtype=np.float64)
        for j, (f, values) in enumerate(zip(self.numeric, zip(*rows, strict=True), strict=True)):
            kinds = set(map(type, values))
            if not kinds <= (_NUMBER_OR_BOOL if f.binary else _NUMBER) | {_NONE}:
                return None
            try:
                numeric[:, j] = values  # None -> NaN
            except (OverflowError, TypeError, ValueError):
                return None
            if _NONE in kinds:
                nulls = np.fromiter(map(operator.is_, values, repeat(None)), dtype=bool, count=n)
                if not np.isfinite(numeric[~nulls, j]).all():
                    return None
                numeric[nulls, j] = f.mean
            elif not np.isfinite(numeric[:, j]).all():
                return None
        numeric -= self._mean
        numeric /= self._std
        return numeric.astype(np.float32)

    def _fields_as_expected(self, records: list[dict[str, Any]]) -> bool:
        """Whether no record has a field other than the inputs and the id column, in C-level passes: the
        sizes of the records add up to the inputs plus the id column where a record carries it. (A missing
        input shows as a KeyError when the fields are read, which sends the batch down the per-record path.)"""
        required = len(self.input_names)
        sizes = sum(map(len, records))
        if sizes == required * len(records):
            return True
        if self.id_column is None:
            return False
        return sizes == required * len(records) + sum(map(operator.contains, records, repeat(self.id_column)))

    @staticmethod
    def _sequence_columns(values: list[Any], field: SequenceField) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(the last max_len item codes of each list, right-padded to the longest; lengths), or None."""
        if set(map(type, values)) != {list}:
            return None
        flat = list(chain.from_iterable(values))
        kinds = set(map(type, flat))
        if not kinds <= _ITEM:
            return None
        sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        keys = flat if kinds <= {str} else list(map(category_key, flat))
        codes = np.fromiter(map(field.codes.get, keys, repeat(OOV)), dtype=np.int64, count=len(keys))
        lengths = np.minimum(sizes, field.max_len)
        # as wide as the longest request, not max_len: a GRU then runs only the steps that exist
        width = max(1, int(lengths.max()))
        starts = np.cumsum(sizes) - lengths
        return torch.from_numpy(left_aligned(codes, starts, lengths, width)), torch.from_numpy(lengths)

    def _encode_rows(self, records: list[Any]) -> dict[str, torch.Tensor]:
        """Record by record: every problem named (record, field, value seen, what to send), or the batch."""
        numeric_rows, categorical_rows, sequences, texts = [], [], [], []
        problems: list[str] = []
        for position, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append(
                    f"{_where(position, records)}: expected an object with fields {', '.join(self.input_names)}, "
                    f"got {type(record).__name__}"
                )
                continue
            if not self._required <= record.keys() <= self._allowed:
                problems.extend(self._shape_problems(_where(position, records), record))
            if self.numeric:
                row = []
                for f in self.numeric:
                    value = record.get(f.name, _ABSENT)
                    if value is None:
                        row.append(f.mean)
                    elif (
                        isinstance(value, (int, float))
                        and (not isinstance(value, bool) or f.binary)
                        and -_FLOAT_MAX <= value <= _FLOAT_MAX  # NaN, infinities and ints beyond float fail this
                    ):
                        row.append(float(value))
                    elif value is not _ABSENT:
                        problems.append(self._type_problem(_where(position, records), f.name, value))
                numeric_rows.append(row)
            if self.categorical:
                row_codes = []
                for c in self.categorical:
                    value = record.get(c.name, _ABSENT)
                    if value is None:
                        row_codes.append(OOV)
                    elif isinstance(value, (str, int, bool)):
                        row_codes.append(c.codes.get(category_key(value), OOV))
                    elif value is not _ABSENT:
                        problems.append(self._type_problem(_where(position, records), c.name, value))
                categorical_rows.append(row_codes)
            if self.sequence:
                name = self.sequence.name
                value = record.get(name, _ABSENT)
                if isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
                    codes = self.sequence.codes
                    sequences.append([codes.get(category_key(v), OOV) for v in value[-self.sequence.max_len :]])
                elif value is not _ABSENT:
                    problems.append(self._type_problem(_where(position, records), name, value))
            if self.text:
                name = self.text.name
                value = record.get(name, _ABSENT)
                if value is None or isinstance(value, str):
                    texts.append(value or "")
                elif value is not _ABSENT:
                    problems.append(self._type_problem(_where(position, records), name, value))
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise RequestError.listing(problems, MAX_PROBLEMS)
        batch: dict[str, torch.Tensor] = {}
        if self.numeric:
            standardised = (np.array(numeric_rows, dtype=np.float64) - self._mean) / self._std
            batch["numeric"] = torch.from_numpy(standardised.astype(np.float32))
        if self.categorical:
            batch["categorical"] = torch.tensor(categorical_rows, dtype=torch.int64)
        if self.sequence:
            # as wide as the longest request, not max_len: a GRU then runs only the steps that exist
            width = max(1, max(map(len, sequences)))
            batch["sequence"] = torch.tensor([s + [PAD] * (width - len(s)) for s in sequences], dtype=torch.int64)
            batch["lengths"] = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
        if self.text:
            buckets, max_tokens = self.text.buckets, self.text.max_tokens
            rows = [[hash_token(t, buckets) for t in TOKEN.findall(s.lower())][:max_tokens] for s in texts]
            batch["text"] = torch.tensor([r + [PAD] * (max_tokens - len(r)) for r in rows], dtype=torch.int64)
        if not batch:
            batch["numeric"] = torch.zeros((len(records), 0))
        return batch

    def _shape_problems(self, where: str, record: dict[str, Any]) -> list[str]:
        """Unknown and missing fields of one record, each a problem of its own."""
        unknown = sorted(map(str, record.keys() - self._allowed))
        problems = []
        if unknown:
            shown = ", ".join(name[:60] for name in unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            problems.append(f"{where}: unknown field(s) {shown}; expected {', '.join(self.input_names)}")
        problems.extend(
            f"{where}: missing field `{name}` ({self._expected(name)})" for name in self.input_names if name not in record
        )
        return problems

    def _type_problem(self, where: str, name: str, value: Any) -> str:
        return f"{where}: field `{name}` expected {self._expected(name)}, got {_shown(value)}"

    def _expected(self, name: str) -> str:
        return _EXPECTED[dict(self.inputs)[name]]

    # --- the request schema and the response ----------------------------------------------------------
    def request_schema(self) -> dict[str, Any]:
        """JSON Schema of one request record."""
        properties: dict[str, dict[str, Any]] = {name: dict(_SCHEMA_TYPES[kind]) for name, kind in self.inputs}
        if self.id_column:
            properties[self.id_column] = {"type": ["string", "integer"], "description": "carried through to the log"}
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": list(self.input_names),
            "additionalProperties": False,
        }

    def response_description(self) -> dict[str, Any]:
        """What each response record holds (the package manifest's `response`)."""
        return dict(self._responder.description)

    def respond(self, output: torch.Tensor) -> list[dict[str, Any]]:
        """The module's raw output for a batch -> one response dict per record."""
        return self._responder.records(output)

    def respond_json(self, output: torch.Tensor) -> list[str]:
        """The module's raw output -> one response per record as compact JSON text; PredictionNotFinite
        where an output is NaN or infinite (not JSON)."""
        return self._responder.texts(output)
