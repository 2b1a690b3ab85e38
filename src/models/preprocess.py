"""Preprocessing fitted on the TRAIN split only: vocabularies, normalisation, text hashing.

Two paths share one fitted state (preprocess.json): `transform` turns an Arrow table into tensors with
vectorised pyarrow/numpy (training, evaluation); rscale.serving.codec.RequestCodec, built from the same
state, checks request records and turns them into the same tensors, and the output into responses (serving).

Batch layout, the same for every model:
    numeric      float32 [B, n_numeric]   numeric and binary inputs, standardised ((x - mean) / std, null -> mean)
    categorical  int64   [B, n_categorical]  0 padding, 1 out-of-vocabulary, 2.. known values
    sequence     int64   [B, max_len]     the last max_len items, right-padded with 0; `lengths` int64 [B]
    text         int64   [B, max_tokens]  hashed tokens in 1..buckets-1, right-padded with 0
    target       float32 [B] (binary, regression: standardised) or int64 [B] (ranking, multiclass)
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from pydantic import BaseModel

from rscale.compiler.spec.model import SessionRecConfig, TextConfig
from rscale.compiler.spec.tasks import TASKS, target_kind

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

PAD, OOV = 0, 1
RESERVED = 2
MAX_VOCAB = 500_000  # most frequent values kept; the rest map to OOV, so a huge catalogue stays trainable
TEXT_MAX_TOKENS = 128
IGNORE_CLASS = -100  # multiclass targets unseen in training; cross-entropy skips them
PREPROCESS_FORMAT = 1


def model_setting(model: Any, name: str, config: type[BaseModel]) -> Any:
    """The model config's `name`, or, for a model type without that key (a custom module reading a sequence
    or a text input), the default `config` declares for it: every default lives in the spec's config class."""
    if hasattr(model, name):
        return getattr(model, name)
    return config.model_fields[name].get_default(call_default_factory=True)


def _task(kind: str) -> Any:
    """The runtime Task of a target kind (rscale.models.tasks, which imports this module: through the registry)."""
    return TASKS.load(kind)


def left_aligned(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """Row i is `codes[starts[i] : starts[i] + lengths[i]]`, left-aligned and PAD-filled to `width`
    ([rows, width] int64): one gather for every row, for the table path and the serving codec alike."""
    positions = starts[:, None] + np.arange(width)[None, :]
    inside = np.arange(width)[None, :] < lengths[:, None]
    if not len(codes):
        return np.zeros((len(lengths), width), dtype=np.int64)
    return np.where(inside, codes[np.minimum(positions, len(codes) - 1)], PAD).astype(np.int64)


def _vocabulary(values: pa.Array | pa.ChunkedArray, cap: int = MAX_VOCAB) -> list[str]:
    """Distinct non-null values as strings, most frequent first (ties alphabetical), capped at `cap`."""
    return _vocabulary_of_counts([_value_counts(values)], cap)


def _value_counts(values: pa.Array | pa.ChunkedArray) -> pa.StructArray:
    """Each distinct non-null value (as a string) and how often it occurs: one part of a vocabulary."""
    if values.type != pa.string():
        values = values.cast(pa.string())
    return pc.value_counts(pc.drop_null(values))


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


def _combine(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


SLICE_ROWS = 1 << 18  # rows per piece when columns are read piecewise: float64 temporaries of 2 MiB
BLOCK_ROWS = 1 << 13  # rows of the numeric matrix written at once: 8,192 x n_numeric floats stay in cache
PARALLEL_ROWS = 1 << 18  # tables with fewer rows are encoded in this thread: threads would cost more than they save


def _chunks(column: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def _float_slices(column: pa.ChunkedArray | pa.Array) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float64 values) per piece of at most SLICE_ROWS rows; nulls read as NaN.

    Without copying the column: float64 pieces without nulls are zero-copy views, others are cast piece
    by piece, so no full-size float64 temporary is ever built.
    """
    start = 0
    for chunk in _chunks(column):
        for offset in range(0, len(chunk), SLICE_ROWS):
            piece = chunk.slice(offset, SLICE_ROWS)
            if piece.type != pa.float64():
                piece = pc.cast(piece, pa.float64())
            yield start, piece.to_numpy(zero_copy_only=False)
            start += len(piece)


def _float64_values(array: pa.Array) -> np.ndarray:
    """An array's values as float64 numpy, nulls as NaN: a zero-copy view where it is float64 without nulls
    (the caller passes at most SLICE_ROWS rows, so a copy is that small)."""
    if array.type != pa.float64():
        array = pc.cast(array, pa.float64())
    return array.to_numpy(zero_copy_only=False)


def _all_finite(values: np.ndarray) -> bool:
    """One summing pass, no boolean temporary: a NaN or inf makes the sum so (rarely, an overflow does too)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.isfinite(values.sum()))


class _Encoded:
    """A categorical column's rows, read once: per chunk, its distinct values (strings) and each row's index
    into them (-1 for a null). Their counts (`parts`, as `_value_counts` gives them) fit the vocabulary; the
    indices, mapped through the vocabulary's codes of those few distinct values, are the encoded rows, so
    no second hashing pass over the strings is needed (`Preprocessor.fit_transform`)."""

    def __init__(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.chunks: list[tuple[pa.Array, np.ndarray]] = []
        self.parts: list[pa.StructArray] = []
        for chunk in _chunks(column):
            encoded = pc.dictionary_encode(chunk if chunk.type == pa.string() else chunk.cast(pa.string()))
            rows = pc.fill_null(encoded.indices, -1) if encoded.indices.null_count else encoded.indices
            indices = rows.to_numpy(zero_copy_only=False)
            counts = np.bincount(indices + 1, minlength=len(encoded.dictionary) + 1)[1:].astype(np.int64)
            self.chunks.append((encoded.dictionary, indices))
            self.parts.append(pa.StructArray.from_arrays([encoded.dictionary, pa.array(counts)], names=["values", "counts"]))
        if not self.parts:  # no rows in this range
            self.parts.append(_value_counts(pa.array([], pa.string())))

    def codes_into(self, out: np.ndarray, value_set: pa.Array) -> None:
        """out = vocabulary index + RESERVED per row, OOV for values outside `value_set` and for nulls."""
        start = 0
        for dictionary, indices in self.chunks:
            known = pc.fill_null(pc.index_in(dictionary, value_set=value_set), OOV - RESERVED)
            # one code per distinct value, then OOV last, where a null's index -1 wraps round to
            by_entry = np.append(known.to_numpy(zero_copy_only=False).astype(np.int64) + RESERVED, OOV)
            np.take(by_entry, indices, out=out[start : start + len(indices)], mode="wrap")
            start += len(indices)


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


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> np.ndarray:
    """An uninitialised output array in torch's memory, seen through numpy.

    Not np.empty: numpy asks the kernel for transparent huge pages on big arrays, and where the kernel
    defragments on such a request (transparent_hugepage/defrag = madvise, a common default), the first
    writes can stall for tens of milliseconds while it compacts memory.
    """
    return torch.empty(shape, dtype=dtype).numpy()


def _row_ranges(rows: int) -> list[tuple[int, int]]:
    """Contiguous (start, stop) row ranges, one per core when the table is big enough to gain from threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parts = max(1, min(cores, rows // PARALLEL_ROWS))
    bounds = [rows * i // parts for i in range(parts + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


def _run_all(tasks: Sequence[Callable[[], Any]], rows: int) -> list[Any]:
    """Results of `tasks`, in order, run on this machine's cores when the table is big enough to gain from it.

    numpy's arithmetic and Arrow's kernels release the GIL, so threads give real parallelism here.
    """
    workers = min(len(tasks), len(_row_ranges(rows)))
    if workers < 2:
        return [task() for task in tasks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rscale-preprocess") as pool:
        return list(pool.map(lambda task: task(), tasks))


def _hash_token(token: str, buckets: int) -> int:
    # crc32 is stable across processes (Python's hash() is salted), so training and serving agree
    return 1 + zlib.crc32(token.encode()) % (buckets - 1)


class Preprocessor:
    """Fitted preprocessing state; JSON-serialisable via to_dict/from_dict."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.vocabularies: dict[str, list[str]] = state["vocabularies"]
        self._arrow_vocab = {name: pa.array(tokens, pa.string()) for name, tokens in self.vocabularies.items()}
        self.numeric: list[dict[str, Any]] = state["numeric"]
        self.categorical: list[dict[str, Any]] = state["categorical"]
        self.sequence: dict[str, Any] | None = state["sequence"]
        self.text: dict[str, Any] | None = state["text"]
        self.target: dict[str, Any] = state["target"]
        self.task = _task(self.target["kind"])  # the target's kind, stored once: preprocess.json's target.kind
        self.id_column: str | None = state.get("id")
        self.input_names = [f["name"] for f in state["inputs"]]

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
        fitted, encoded = cls._fit(plan, train, keep_rows=True)
        return fitted, fitted._transform(train, with_target, encoded)

    @classmethod
    def _fit(cls, plan: Plan, train: pa.Table, keep_rows: bool) -> tuple[Preprocessor, dict[str, list[_Encoded]]]:
        """The fit; with `keep_rows`, also each plain categorical input's rows as read, per row range of
        `_row_ranges` (for `_transform`)."""
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
        # the vocabularies and statistics are independent reads of the table, computed side by side: value
        # counts (string hashing, the longest) per row range first, then one task per numeric column
        numeric_inputs = [f for f in features.inputs if f.type == "numeric"]
        categorical_inputs = [f for f in features.inputs if f.type == "categorical"]
        ranges = _row_ranges(train.num_rows)
        # a dictionary-typed column is encoded through its own dictionary already (see _codes_into)
        kept = [f.name for f in categorical_inputs if keep_rows and not pa.types.is_dictionary(train.schema.field(f.name).type)]
        found = _run_all(
            [
                partial(_Encoded if f.name in kept else _value_counts, train[f.name].slice(a, b - a))
                for f in categorical_inputs
                for a, b in ranges
            ]
            + [partial(_finite_mean_std, train[f.name]) for f in numeric_inputs],
            train.num_rows,
        )
        encoded: dict[str, list[_Encoded]] = {}
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
                    {
                        "name": feature.name,
                        "mean": mean,
                        "std": std if std > 1e-12 else 1.0,
                        "binary": feature.type == "binary",
                    }
                )
            elif feature.type == "categorical":
                categorical.append({"name": feature.name, "vocab": feature.name})
            elif feature.type == "sequence":
                max_len = model_setting(plan.model, "max_len", SessionRecConfig)
                sequence = {"name": feature.name, "vocab": feature.name, "max_len": int(max_len)}
                items = pc.list_flatten(_combine(column))
                if features.target.type == "categorical" and _task(target_kind(plan.task, "categorical")).shares_item_space:
                    # one item space: the history and the next item share embeddings and the output layer
                    items = pa.concat_arrays(
                        [items.cast(pa.string()), _combine(train[features.target.name]).cast(pa.string())]
                    )
                vocabularies[feature.name] = _vocabulary(items)
            elif feature.type == "text":
                text = {
                    "name": feature.name,
                    "buckets": int(model_setting(plan.model, "buckets", TextConfig)),
                    "max_tokens": TEXT_MAX_TOKENS,
                }
        kind = target_kind(plan.task, features.target.type)
        target: dict[str, Any] = {"name": features.target.name, "kind": kind}
        target.update(_task(kind).fit_target(train[features.target.name], vocabularies, sequence))
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
            "top_k": int(model_setting(plan.model, "top_k", SessionRecConfig)),
        }
        return cls(state), encoded

    def to_dict(self) -> dict[str, Any]:
        return self.state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Preprocessor:
        return cls(state)

    def shapes(self) -> dict[str, Any]:
        """Sizes a module needs to build its layers (embedding tables, input widths, outputs)."""
        target = self.target
        outputs = self.task.shapes(target, self.vocabularies)
        return {
            "n_numeric": len(self.numeric),
            "categorical_sizes": [len(self.vocabularies[c["vocab"]]) + RESERVED for c in self.categorical],
            "sequence_vocab": len(self.vocabularies[self.sequence["vocab"]]) + RESERVED if self.sequence else 0,
            "max_len": self.sequence["max_len"] if self.sequence else 0,
            "text_buckets": self.text["buckets"] if self.text else 0,
            "n_items": outputs["n_items"],
            "n_classes": outputs["n_classes"],
            "target_kind": self.task.kind,
            "target_mean": target.get("mean", 0.0),
            "target_std": target.get("std", 1.0),
        }

    # --- tables -> tensors (vectorised) --------------------------------------------------------------
    def transform(self, table: pa.Table, with_target: bool = True) -> dict[str, torch.Tensor]:
        """Encode a whole table. Unknown values map to OOV, nulls to the mean / OOV / an empty sequence.

        Each output is allocated once, at its final dtype and shape, and filled column by column, piece by
        piece (see _standardise_into): its size, not a multiple of the table's, is what this adds to memory.
        """
        return self._transform(table, with_target, {})

    def _transform(
        self, table: pa.Table, with_target: bool, encoded: dict[str, list[_Encoded]]
    ) -> dict[str, torch.Tensor]:
        """transform; `encoded`: categorical columns already read by `_fit(keep_rows=True)`, per row range."""
        n = table.num_rows
        batch: dict[str, torch.Tensor] = {}
        numeric = _empty((n, len(self.numeric)), torch.float32) if self.numeric else None
        categorical = _empty((n, len(self.categorical)), torch.int64) if self.categorical else None
        target = None
        if with_target:
            target = _empty((n,), self.task.target_dtype)

        def fill(part: int, start: int, stop: int) -> None:
            # rows start..stop of every flat output; workers take contiguous row ranges, so no two of them
            # write the same cache lines
            rows = table.slice(start, stop - start)
            if numeric is not None:
                self._standardise_into(numeric[start:stop], rows, np.empty(min(BLOCK_ROWS, stop - start), np.float64))
            for j, c in enumerate(self.categorical):
                if c["name"] in encoded:  # read in the fit: no second pass over the strings
                    encoded[c["name"]][part].codes_into(categorical[start:stop, j], self._arrow_vocab[c["vocab"]])  # type: ignore[index]
                else:
                    self._codes_into(categorical[start:stop, j], rows[c["name"]], c["vocab"])  # type: ignore[index]
            if target is not None:
                self._target_into(target[start:stop], rows[self.target["name"]])

        _run_all([partial(fill, k, a, b) for k, (a, b) in enumerate(_row_ranges(n))], n)
        if numeric is not None:
            batch["numeric"] = torch.from_numpy(numeric)
        if categorical is not None:
            batch["categorical"] = torch.from_numpy(categorical)
        if self.sequence:
            matrix, lengths = self._sequence_matrix(_combine(table[self.sequence["name"]]))
            batch["sequence"], batch["lengths"] = torch.from_numpy(matrix), torch.from_numpy(lengths)
        if self.text:
            batch["text"] = torch.from_numpy(self._text_matrix(_combine(table[self.text["name"]])))
        if target is not None:
            batch["target"] = torch.from_numpy(target)
        if not batch:
            batch["numeric"] = torch.zeros((n, 0))
        return batch

    def _standardise_into(self, out: np.ndarray, table: pa.Table, scratch: np.ndarray) -> None:
        """out[:, j] = float32((x_j - mean_j) / std_j) for each numeric input j, computed in float64 as always;
        nulls, NaN and inf give 0 (the mean).

        Row block by row block, every column of a block before the next block: the block's rows of `out`
        (BLOCK_ROWS x n_numeric floats) stay in cache while its columns are written, where a column-at-a-time
        pass would carry the whole output matrix through memory once per column. The columns are read as
        float64 one window of SLICE_ROWS rows at a time (zero-copy where they are float64 without nulls), so
        no full-size float64 temporary is built; `scratch` (float64, BLOCK_ROWS long) holds each block's result.
        """
        block = max(1, min(BLOCK_ROWS, SLICE_ROWS))
        first = 0
        # record batches: every column one Array over the same rows, cut at every column's chunk boundaries
        # without copying, so a float64 column without nulls is read in place
        for window in table.select([f["name"] for f in self.numeric]).to_batches(max_chunksize=SLICE_ROWS):
            columns = [_float64_values(column) for column in window.columns]
            for start in range(0, window.num_rows, block):
                stop = min(start + block, window.num_rows)
                for j, (f, values) in enumerate(zip(self.numeric, columns, strict=True)):
                    piece = values[start:stop]
                    scaled = np.subtract(piece, f["mean"], out=scratch[: stop - start])
                    scaled /= f["std"]
                    if not _all_finite(scaled):
                        scaled[~np.isfinite(piece)] = 0.0
                    out[first + start : first + stop, j] = scaled
            first += window.num_rows

    def transform_target(self, column: pa.ChunkedArray | pa.Array) -> torch.Tensor:
        out = np.empty(len(column), dtype=self.task.numpy_dtype)
        self._target_into(out, column)
        return torch.from_numpy(out)

    def _target_into(self, out: np.ndarray, column: pa.ChunkedArray | pa.Array) -> None:
        """out = the target as training reads it: item or class index, 0/1, or the standardised value."""
        self.task.encode_target_into(self, out, column)

    def target_values(self, column: pa.Array) -> np.ndarray:
        """The target as metrics read it: class/item index, 0/1, or the raw regression value."""
        return self.task.target_values(self, column)

    def _codes_into(self, out: np.ndarray, column: pa.ChunkedArray | pa.Array, vocab: str) -> None:
        """out = vocabulary index + RESERVED per row, OOV for unknown values and nulls.

        One index_in over the whole column (its hash table of the vocabulary is built once); a dictionary-
        encoded column is looked up through its dictionary, so each distinct value is hashed once.
        """
        value_set = self._arrow_vocab[vocab]
        start = 0
        if pa.types.is_dictionary(column.type):
            for chunk in _chunks(column):
                known = pc.index_in(chunk.dictionary.cast(pa.string()), value_set=value_set)
                by_entry = pc.fill_null(known, OOV - RESERVED).to_numpy(zero_copy_only=False).astype(np.int64)
                if len(by_entry) == 0:  # an empty dictionary: every row is null
                    by_entry = np.array([OOV - RESERVED], dtype=np.int64)
                codes = by_entry[pc.fill_null(chunk.indices, 0).to_numpy(zero_copy_only=False)]
                if chunk.null_count:
                    codes[~pc.is_valid(chunk).to_numpy(zero_copy_only=False)] = OOV - RESERVED
                np.add(codes, RESERVED, out=out[start : start + len(chunk)])
                start += len(chunk)
            return
        strings = column if column.type == pa.string() else column.cast(pa.string())
        for piece in _chunks(pc.index_in(strings, value_set=value_set)):
            if piece.null_count:
                piece = pc.fill_null(piece, OOV - RESERVED)
            np.add(piece.to_numpy(zero_copy_only=False), RESERVED, out=out[start : start + len(piece)])
            start += len(piece)

    def _table_codes(self, column: pa.Array, vocab: str) -> np.ndarray:
        codes = np.empty(len(column), dtype=np.int64)
        self._codes_into(codes, column, vocab)
        return codes

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
        return left_aligned(codes, starts, row_lengths, max_len), row_lengths.astype(np.int64)

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
