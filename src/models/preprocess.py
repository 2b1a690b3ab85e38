"""Preprocessing fitted on the TRAIN split only: vocabularies, normalisation, text hashing.

Two paths share one fitted state (preprocess.json): `transform` turns an Arrow table into tensors with
vectorised pyarrow/numpy (training, evaluation), `encode_records` turns a few request dicts into the same
tensors with plain Python (serving, where one record must cost microseconds, not a table build).

Batch layout, the same for every model:
    numeric      float32 [B, n_numeric]   numeric and binary inputs, standardised ((x - mean) / std, null -> mean)
    categorical  int64   [B, n_categorical]  0 padding, 1 out-of-vocabulary, 2.. known values
    sequence     int64   [B, max_len]     the last max_len items, right-padded with 0; `lengths` int64 [B]
    text         int64   [B, max_tokens]  hashed tokens in 1..buckets-1, right-padded with 0
    target       float32 [B] (binary, regression: standardised) or int64 [B] (ranking, multiclass)
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from rscale.models.package import RequestError

PAD, OOV = 0, 1
RESERVED = 2
MAX_VOCAB = 500_000  # most frequent values kept; the rest map to OOV, so a huge catalogue stays trainable
TEXT_MAX_TOKENS = 128
IGNORE_CLASS = -100  # multiclass targets unseen in training; cross-entropy skips them
TOKEN = re.compile(r"\w+")
PREPROCESS_FORMAT = 1


def _vocabulary(values: pa.Array | pa.ChunkedArray, cap: int = MAX_VOCAB) -> list[str]:
    """Distinct non-null values as strings, most frequent first (ties alphabetical), capped at `cap`."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.drop_null(values.cast(pa.string()))
    if len(values) == 0:
        return []
    counts = pc.value_counts(values)
    tokens = counts.field("values").to_numpy(zero_copy_only=False)
    freq = counts.field("counts").to_numpy()
    order = np.lexsort((tokens, -freq))[:cap]
    return [str(t) for t in tokens[order]]


def _combine(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _hash_token(token: str, buckets: int) -> int:
    # crc32 is stable across processes (Python's hash() is salted), so training and serving agree
    return 1 + zlib.crc32(token.encode()) % (buckets - 1)


class Preprocessor:
    """Fitted preprocessing state; JSON-serialisable via to_dict/from_dict."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.vocabularies: dict[str, list[str]] = state["vocabularies"]
        self._arrow_vocab = {name: pa.array(tokens, pa.string()) for name, tokens in self.vocabularies.items()}
        self._index = {
            name: {t: i + RESERVED for i, t in enumerate(tokens)} for name, tokens in self.vocabularies.items()
        }
        self.numeric: list[dict[str, Any]] = state["numeric"]
        self.categorical: list[dict[str, Any]] = state["categorical"]
        self.sequence: dict[str, Any] | None = state["sequence"]
        self.text: dict[str, Any] | None = state["text"]
        self.target: dict[str, Any] = state["target"]
        self.id_column: str | None = state.get("id")
        self.input_names = [f["name"] for f in state["inputs"]]
        self._allowed = set(self.input_names) | ({self.id_column} if self.id_column else set())
        self._numeric_mean = torch.tensor([f["mean"] for f in self.numeric], dtype=torch.float32)
        self._numeric_std = torch.tensor([f["std"] for f in self.numeric], dtype=torch.float32)

    # --- fitting -----------------------------------------------------------------------------------
    @classmethod
    def fit(cls, plan: Any, train: pa.Table) -> Preprocessor:
        """Fit vocabularies and statistics on the training table only, as the plan's features describe."""
        features = plan.features
        missing = [f.name for f in [*features.inputs, features.target] if f.name not in train.column_names]
        if missing:
            from rscale.errors import RscaleError

            raise RscaleError(
                f"the training data has no column(s) {', '.join(missing)} (columns: {', '.join(train.column_names)})",
                fix="make data.query return every column named in features, or rename the features",
            )
        vocabularies: dict[str, list[str]] = {}
        numeric, categorical, sequence, text = [], [], None, None
        for feature in features.inputs:
            column = _combine(train[feature.name])
            if feature.type in ("numeric", "binary"):
                values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
                finite = values[np.isfinite(values)]
                if feature.type == "binary":
                    mean, std = 0.0, 1.0
                else:
                    mean = float(finite.mean()) if len(finite) else 0.0
                    std = float(finite.std()) if len(finite) else 1.0
                numeric.append(
                    {
                        "name": feature.name,
                        "mean": mean,
                        "std": std if std > 1e-12 else 1.0,
                        "binary": feature.type == "binary",
                    }
                )
            elif feature.type == "categorical":
                vocabularies[feature.name] = _vocabulary(column)
                categorical.append({"name": feature.name, "vocab": feature.name})
            elif feature.type == "sequence":
                max_len = getattr(plan.model, "max_len", 50)
                sequence = {"name": feature.name, "vocab": feature.name, "max_len": int(max_len)}
                items = pc.list_flatten(column)
                if features.target.type == "categorical" and plan.task == "ranking":
                    # one item space: the history and the next item share embeddings and the output layer
                    items = pa.concat_arrays(
                        [items.cast(pa.string()), _combine(train[features.target.name]).cast(pa.string())]
                    )
                vocabularies[feature.name] = _vocabulary(items)
            elif feature.type == "text":
                text = {
                    "name": feature.name,
                    "buckets": int(getattr(plan.model, "buckets", 2**18)),
                    "max_tokens": TEXT_MAX_TOKENS,
                }
        target_column = _combine(train[features.target.name])
        target: dict[str, Any] = {"name": features.target.name}
        if plan.task == "ranking":
            if sequence is not None:
                target.update(kind="ranking", vocab=sequence["vocab"])
            else:
                vocabularies["__target__"] = _vocabulary(target_column)
                target.update(kind="ranking", vocab="__target__")
        elif plan.task == "regression" or features.target.type == "numeric":
            values = pc.cast(target_column, pa.float64()).to_numpy(zero_copy_only=False)
            finite = values[np.isfinite(values)]
            std = float(finite.std()) if len(finite) else 1.0
            target.update(
                kind="regression", mean=float(finite.mean()) if len(finite) else 0.0, std=std if std > 1e-12 else 1.0
            )
        elif features.target.type == "binary":
            target.update(kind="binary")
        else:
            classes = sorted(_vocabulary(target_column))
            target.update(kind="multiclass", classes=classes)
        state = {
            "format": PREPROCESS_FORMAT,
            "inputs": [f.model_dump(mode="json") for f in features.inputs],
            "id": features.id,
            "numeric": numeric,
            "categorical": categorical,
            "sequence": sequence,
            "text": text,
            "target": target,
            "vocabularies": vocabularies,
            "top_k": int(getattr(plan.model, "top_k", 10)),
        }
        return cls(state)

    def to_dict(self) -> dict[str, Any]:
        return self.state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Preprocessor:
        return cls(state)

    def shapes(self) -> dict[str, Any]:
        """Sizes a module needs to build its layers (embedding tables, input widths, outputs)."""
        target = self.target
        n_items = len(self.vocabularies[target["vocab"]]) + RESERVED if target["kind"] == "ranking" else 0
        return {
            "n_numeric": len(self.numeric),
            "categorical_sizes": [len(self.vocabularies[c["vocab"]]) + RESERVED for c in self.categorical],
            "sequence_vocab": len(self.vocabularies[self.sequence["vocab"]]) + RESERVED if self.sequence else 0,
            "max_len": self.sequence["max_len"] if self.sequence else 0,
            "text_buckets": self.text["buckets"] if self.text else 0,
            "n_items": n_items,
            "n_classes": len(target.get("classes", [])) if target["kind"] == "multiclass" else 1,
            "target_kind": target["kind"],
            "target_mean": target.get("mean", 0.0),
            "target_std": target.get("std", 1.0),
        }

    # --- tables -> tensors (vectorised) --------------------------------------------------------------
    def transform(self, table: pa.Table, with_target: bool = True) -> dict[str, torch.Tensor]:
        """Encode a whole table. Unknown values map to OOV, nulls to the mean / OOV / an empty sequence."""
        n = table.num_rows
        batch: dict[str, torch.Tensor] = {}
        if self.numeric:
            columns = []
            for f in self.numeric:
                values = pc.cast(_combine(table[f["name"]]), pa.float64()).to_numpy(zero_copy_only=False)
                values = np.where(np.isfinite(values), values, f["mean"])
                columns.append((values - f["mean"]) / f["std"])
            batch["numeric"] = torch.from_numpy(np.stack(columns, axis=1).astype(np.float32))
        if self.categorical:
            codes = [self._table_codes(_combine(table[c["name"]]), c["vocab"]) for c in self.categorical]
            batch["categorical"] = torch.from_numpy(np.stack(codes, axis=1))
        if self.sequence:
            matrix, lengths = self._sequence_matrix(_combine(table[self.sequence["name"]]))
            batch["sequence"], batch["lengths"] = torch.from_numpy(matrix), torch.from_numpy(lengths)
        if self.text:
            batch["text"] = torch.from_numpy(self._text_matrix(_combine(table[self.text["name"]])))
        if with_target:
            batch["target"] = self.transform_target(_combine(table[self.target["name"]]))
        if not batch:
            batch["numeric"] = torch.zeros((n, 0))
        return batch

    def transform_target(self, column: pa.Array) -> torch.Tensor:
        kind = self.target["kind"]
        if kind == "ranking":
            return torch.from_numpy(self._table_codes(column, self.target["vocab"]))
        if kind == "multiclass":
            classes = pa.array(self.target["classes"], pa.string())
            found = pc.fill_null(pc.index_in(column.cast(pa.string()), value_set=classes), IGNORE_CLASS)
            return torch.from_numpy(found.to_numpy(zero_copy_only=False).astype(np.int64))
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        if kind == "regression":
            values = (values - self.target["mean"]) / self.target["std"]
        return torch.from_numpy(np.nan_to_num(values).astype(np.float32))

    def target_values(self, column: pa.Array) -> np.ndarray:
        """The target as metrics read it: class/item index, 0/1, or the raw regression value."""
        if self.target["kind"] == "regression":
            return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return self.transform_target(column).numpy()

    def _table_codes(self, column: pa.Array, vocab: str) -> np.ndarray:
        found = pc.index_in(column.cast(pa.string()), value_set=self._arrow_vocab[vocab])
        codes = pc.fill_null(found, OOV - RESERVED).to_numpy(zero_copy_only=False).astype(np.int64)
        return codes + RESERVED

    def _sequence_matrix(self, column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """The last max_len non-null items of each list, right-padded; built without a per-row loop."""
        max_len = self.sequence["max_len"]  # type: ignore[index]
        flat = pc.list_flatten(column)
        lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        valid = pc.is_valid(flat).to_numpy(zero_copy_only=False)
        codes = self._table_codes(flat, self.sequence["vocab"])[valid]  # type: ignore[index]
        # null elements (e.g. from ARRAY_AGG over NULLs) are dropped, not treated as items
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        kept_before = np.concatenate([[0], np.cumsum(valid)])
        ends = kept_before[offsets[1:]]
        starts = np.maximum(kept_before[offsets[:-1]], ends - max_len)
        row_lengths = ends - starts
        positions = starts[:, None] + np.arange(max_len)[None, :]
        inside = np.arange(max_len)[None, :] < row_lengths[:, None]
        if len(codes):
            matrix = np.where(inside, codes[np.minimum(positions, len(codes) - 1)], PAD)
        else:
            matrix = np.zeros((len(lengths), max_len), dtype=np.int64)
        return matrix.astype(np.int64), row_lengths.astype(np.int64)

    def _text_matrix(self, column: pa.Array) -> np.ndarray:
        """Hashed tokens, first max_tokens per row; crc32 runs once per distinct token, not per occurrence."""
        text = self.text
        assert text is not None
        buckets, max_tokens = text["buckets"], text["max_tokens"]
        split = pc.split_pattern_regex(pc.fill_null(pc.utf8_lower(column.cast(pa.string())), ""), r"[^\w]+")
        flat = pc.list_flatten(split)
        lengths = pc.list_value_length(split).to_numpy(zero_copy_only=False).astype(np.int64)
        keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
        encoded = pc.dictionary_encode(flat)
        unique = encoded.dictionary.to_pylist()
        hashed = np.array([_hash_token(t, buckets) if t else PAD for t in unique] or [PAD], dtype=np.int64)
        ids = hashed[encoded.indices.to_numpy(zero_copy_only=False)][keep] if len(flat) else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        kept_before = np.concatenate([[0], np.cumsum(keep)])
        starts = kept_before[offsets[:-1]]
        row_lengths = np.minimum(kept_before[offsets[1:]] - starts, max_tokens)
        positions = starts[:, None] + np.arange(max_tokens)[None, :]
        inside = np.arange(max_tokens)[None, :] < row_lengths[:, None]
        if len(ids):
            return np.where(inside, ids[np.minimum(positions, len(ids) - 1)], PAD).astype(np.int64)
        return np.zeros((len(lengths), max_tokens), dtype=np.int64)

    # --- request records -> tensors (serving) --------------------------------------------------------
    def encode_records(self, records: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Check and encode request records; raises RequestError naming the record and field."""
        if not isinstance(records, list) or not records:
            raise RequestError("expected a non-empty list of records (JSON objects)")
        numeric_rows, categorical_rows, sequences, texts = [], [], [], []
        for position, record in enumerate(records):
            where = f"record {position}" if len(records) > 1 else "request"
            if not isinstance(record, dict):
                raise RequestError(
                    f"{where}: expected an object with fields {', '.join(self.input_names)}, got {type(record).__name__}"
                )
            unknown = record.keys() - self._allowed
            if unknown:
                raise RequestError(
                    f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; expected {', '.join(self.input_names)}"
                )
            for name in self.input_names:
                if name not in record:
                    raise RequestError(f"{where}: missing field `{name}` ({self._expected(name)})")
            if self.numeric:
                row = []
                for f in self.numeric:
                    value = record[f["name"]]
                    if value is None:
                        row.append(f["mean"])
                    elif isinstance(value, (int, float)) and (not isinstance(value, bool) or f["binary"]):
                        row.append(float(value))
                    else:
                        raise RequestError(
                            f"{where}: field `{f['name']}` expected {self._expected(f['name'])}, got {value!r}"
                        )
                numeric_rows.append(row)
            if self.categorical:
                row = []
                for c in self.categorical:
                    value = record[c["name"]]
                    if value is None:
                        row.append(OOV)
                    elif isinstance(value, (str, int, bool)):
                        row.append(self._index[c["vocab"]].get(str(value), OOV))
                    else:
                        raise RequestError(
                            f"{where}: field `{c['name']}` expected {self._expected(c['name'])}, got {value!r}"
                        )
                categorical_rows.append(row)
            if self.sequence:
                name = self.sequence["name"]
                value = record[name]
                if not isinstance(value, list) or not all(
                    isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
                ):
                    raise RequestError(f"{where}: field `{name}` expected {self._expected(name)}, got {value!r}")
                index = self._index[self.sequence["vocab"]]
                sequences.append([index.get(str(v), OOV) for v in value[-self.sequence["max_len"] :]])
            if self.text:
                name = self.text["name"]
                value = record[name]
                if value is not None and not isinstance(value, str):
                    raise RequestError(f"{where}: field `{name}` expected {self._expected(name)}, got {value!r}")
                texts.append(value or "")
        batch: dict[str, torch.Tensor] = {}
        if self.numeric:
            batch["numeric"] = (
                torch.tensor(numeric_rows, dtype=torch.float32) - self._numeric_mean
            ) / self._numeric_std
        if self.categorical:
            batch["categorical"] = torch.tensor(categorical_rows, dtype=torch.int64)
        if self.sequence:
            # as wide as the longest request, not max_len: a GRU then runs only the steps that exist
            max_len = max(1, max(map(len, sequences)))
            batch["sequence"] = torch.tensor([s + [PAD] * (max_len - len(s)) for s in sequences], dtype=torch.int64)
            batch["lengths"] = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
        if self.text:
            buckets, max_tokens = self.text["buckets"], self.text["max_tokens"]
            rows = [[_hash_token(t, buckets) for t in TOKEN.findall(s.lower())][:max_tokens] for s in texts]
            batch["text"] = torch.tensor([r + [PAD] * (max_tokens - len(r)) for r in rows], dtype=torch.int64)
        if not batch:
            batch["numeric"] = torch.zeros((len(records), 0))
        return batch

    def _expected(self, name: str) -> str:
        kind = next(f["type"] for f in self.state["inputs"] if f["name"] == name)
        return {
            "numeric": "a number or null",
            "binary": "true/false or 0/1",
            "categorical": "a string or integer",
            "sequence": "a list of item ids (strings or integers)",
            "text": "a string",
        }[kind]

    def request_schema(self) -> dict[str, Any]:
        """JSON Schema of one request record."""
        types: dict[str, dict[str, Any]] = {
            "numeric": {"type": ["number", "null"]},
            "binary": {"type": ["boolean", "integer", "null"]},
            "categorical": {"type": ["string", "integer", "null"]},
            "sequence": {"type": "array", "items": {"type": ["string", "integer"]}},
            "text": {"type": ["string", "null"]},
        }
        properties: dict[str, dict[str, Any]] = {f["name"]: dict(types[f["type"]]) for f in self.state["inputs"]}
        if self.id_column:
            properties[self.id_column] = {"type": ["string", "integer"], "description": "carried through to the log"}
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": list(self.input_names),
            "additionalProperties": False,
        }

    def response_description(self, model_config: dict[str, Any]) -> dict[str, Any]:
        kind = self.target["kind"]
        if kind == "ranking":
            return {
                "items": "top-k item ids, best first",
                "scores": "softmax probability of each item",
                "top_k": self.state["top_k"],
            }
        if kind == "binary":
            return {"probability": "P(target = 1)", "label": "1 if probability >= 0.5 else 0"}
        if kind == "multiclass":
            return {
                "label": "the most probable class",
                "probabilities": "class -> probability",
                "classes": self.target["classes"],
            }
        return {"value": f"predicted {self.target['name']}"}

    def postprocessor(self, model_config: dict[str, Any]) -> Callable[[torch.Tensor], list[dict[str, Any]]]:
        """A function from the module's raw output to response dicts, with lookups prepared once."""
        kind = self.target["kind"]
        if kind == "ranking":
            items = ["<pad>", "<oov>", *self.vocabularies[self.target["vocab"]]]
            k = min(self.state["top_k"], max(len(items) - RESERVED, 1))

            def ranking(scores: torch.Tensor) -> list[dict[str, Any]]:
                scores = scores.clone()
                scores[:, :RESERVED] = float("-inf")
                top = torch.topk(torch.softmax(scores, dim=-1), k, dim=-1)
                return [
                    {"items": [items[i] for i in idx], "scores": vals}
                    for idx, vals in zip(top.indices.tolist(), top.values.tolist(), strict=True)
                ]

            return ranking
        if kind == "binary":

            def binary(logits: torch.Tensor) -> list[dict[str, Any]]:
                return [{"probability": p, "label": int(p >= 0.5)} for p in torch.sigmoid(logits.reshape(-1)).tolist()]

            return binary
        if kind == "multiclass":
            classes = self.target["classes"]

            def multiclass(logits: torch.Tensor) -> list[dict[str, Any]]:
                probabilities = torch.softmax(logits, dim=-1).tolist()
                return [
                    {
                        "label": classes[max(range(len(p)), key=p.__getitem__)],
                        "probabilities": dict(zip(classes, p, strict=True)),
                    }
                    for p in probabilities
                ]

            return multiclass
        mean, std = self.target["mean"], self.target["std"]

        def regression(output: torch.Tensor) -> list[dict[str, Any]]:
            return [{"value": v * std + mean} for v in output.reshape(-1).tolist()]

        return regression
