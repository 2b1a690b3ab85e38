"""The table encoder: a fitted state (rscale.models.fitted.FittedState) applied to an Arrow table, giving
the tensors training and evaluation read. Vectorised pyarrow/numpy, no Python per row; tables over
PARALLEL_ROWS rows are encoded on every core (numpy and Arrow release the GIL).

Batch layout, the same for every model:
    numeric      float32 [B, n_numeric]   numeric and binary inputs, standardised ((x - mean) / std, null -> mean)
    categorical  int64   [B, n_categorical]  0 padding, 1 out-of-vocabulary, 2.. known values
    sequence     int64   [B, max_len]     the last max_len items, right-padded with 0; `lengths` int64 [B]
    text         int64   [B, max_tokens]  hashed tokens in 1..buckets-1, right-padded with 0
    target       float32 [B] (binary, regression: standardised) or int64 [B] (ranking, multiclass)

The serving codec (rscale.serving.codec) encodes request records into the same layout from the same state,
sharing `left_aligned` and `hash_token` with this module.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from rscale.compiler.spec.tasks import TASKS
from rscale.models.fitted import FittedState, NumericStats, TargetEncoding

PAD, OOV = 0, 1
RESERVED = 2
IGNORE_CLASS = -100  # multiclass targets unseen in training; cross-entropy skips them

def left_aligned(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """Row i is `codes[starts[i] : starts[i] + lengths[i]]`, left-aligned and PAD-filled to `width`
    ([rows, width] int64): one gather for every row, for the table path and the serving codec alike."""
    positions = starts[:, None] + np.arange(width)[None, :]
    inside = np.arange(width)[None, :] < lengths[:, None]
    if not len(codes):
        return np.zeros((len(lengths), width), dtype=np.int64)
    return np.where(inside, codes[np.minimum(positions, len(codes) - 1)], PAD).astype(np.int64)


def _value_counts(values: pa.Array | pa.ChunkedArray) -> pa.StructArray:
    """Each distinct non-null value (as a string) and how often it occurs: one part of a vocabulary."""
    if values.type != pa.string():
        values = values.cast(pa.string())
    return pc.value_counts(pc.drop_null(values))

def _combine(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


SLICE_ROWS = 1 << 18  # rows per piece when columns are read piecewise: float64 temporaries of 2 MiB
BLOCK_ROWS = 1 << 13  # rows of the numeric matrix written at once: 8,192 x n_numeric floats stay in cache
PARALLEL_ROWS = 1 << 18  # tables with fewer rows are encoded in this thread: threads would cost more than they save


def _chunks(column: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def _float_slices(column: pa.ChunkedArray | pa.Array) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, values) per piece of at most SLICE_ROWS rows: float64, nulls as NaN, or the integers
    themselves where the piece is integer without nulls.

    Without copying the column: float64 and integer pieces without nulls are zero-copy views, others are
    cast piece by piece, so no full-size float64 temporary is ever built.
    """
    start = 0
    for chunk in _chunks(column):
        for offset in range(0, len(chunk), SLICE_ROWS):
            piece = chunk.slice(offset, SLICE_ROWS)
            if pa.types.is_integer(piece.type) and not piece.null_count:
                # integers read in place: numpy converts them where they are used (exactly as float64 up to
                # 2**53, Arrow's cast refuses larger), with no float64 copy of the column
                yield start, piece.to_numpy()
            else:
                yield start, _float64_values(piece)
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


class ReadColumn:
    """A categorical column's rows, read once: per chunk, its distinct values (strings) and each row's index
    into them (a null's index is one past the last value). Their counts (`parts`, as `_value_counts` gives
    them) fit the vocabulary; the indices, mapped through the vocabulary's codes of those few distinct
    values, are the encoded rows, so no second hashing pass over the strings is needed
    (`Preprocessor.fit_transform`)."""

    def __init__(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.chunks: list[tuple[pa.Array, np.ndarray]] = []
        self.parts: list[pa.StructArray] = []
        for chunk in _chunks(column):
            encoded = pc.dictionary_encode(chunk if chunk.type == pa.string() else chunk.cast(pa.string()))
            size = len(encoded.dictionary)
            rows = pc.fill_null(encoded.indices, size) if encoded.indices.null_count else encoded.indices
            indices = rows.to_numpy(zero_copy_only=False)
            # every index in 0..size, so no shifted copy of them is needed to count; the nulls' count is dropped
            counts = np.bincount(indices, minlength=size + 1)[:size].astype(np.int64)
            self.chunks.append((encoded.dictionary, indices))
            self.parts.append(pa.StructArray.from_arrays([encoded.dictionary, pa.array(counts)], names=["values", "counts"]))
        if not self.parts:  # no rows in this range
            self.parts.append(_value_counts(pa.array([], pa.string())))

    def codes_into(self, out: np.ndarray, value_set: pa.Array) -> None:
        """out = vocabulary index + RESERVED per row, OOV for values outside `value_set` and for nulls."""
        start = 0
        for dictionary, indices in self.chunks:
            known = pc.fill_null(pc.index_in(dictionary, value_set=value_set), OOV - RESERVED)
            # one code per distinct value, then OOV at a null's index, one past them: every index is in
            # range, so the take needs no bounds check ("clip" never clips here)
            by_entry = np.append(known.to_numpy(zero_copy_only=False).astype(np.int64) + RESERVED, OOV)
            np.take(by_entry, indices, out=out[start : start + len(indices)], mode="clip")
            start += len(indices)


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> np.ndarray:
    """An uninitialised output array in torch's memory, seen through numpy.

    Not np.empty: numpy asks the kernel for transparent huge pages on big arrays, and where the kernel
    defragments on such a request (transparent_hugepage/defrag = madvise, a common default), the first
    writes can stall for tens of milliseconds while it compacts memory.
    """
    return torch.empty(shape, dtype=dtype).numpy()


def row_ranges(rows: int) -> list[tuple[int, int]]:
    """Contiguous (start, stop) row ranges, one per core when the table is big enough to gain from threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parts = max(1, min(cores, rows // PARALLEL_ROWS))
    bounds = [rows * i // parts for i in range(parts + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


def run_all(tasks: Sequence[Callable[[], Any]], rows: int) -> list[Any]:
    """Results of `tasks`, in order, run on this machine's cores when the table is big enough to gain from it.

    numpy's arithmetic and Arrow's kernels release the GIL, so threads give real parallelism here.
    """
    workers = min(len(tasks), len(row_ranges(rows)))
    if workers < 2:
        return [task() for task in tasks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rscale-preprocess") as pool:
        return list(pool.map(lambda task: task(), tasks))


def hash_token(token: str, buckets: int) -> int:
    # crc32 is stable across processes (Python's hash() is salted), so training and serving agree
    return 1 + zlib.crc32(token.encode()) % (buckets - 1)


class TableEncoder:
    """A fitted state applied to Arrow tables: `transform` gives the batch layout above."""

    def __init__(self, state: FittedState) -> None:
        self.state = state
        self.target: TargetEncoding = state.target
        self.numeric: tuple[NumericStats, ...] = state.numeric
        self.task = TASKS.load(state.target.kind)  # rscale.models.tasks (which imports this module): through the registry
        # each vocabulary as an Arrow array once, the value set of every index_in against it
        self._arrow_vocab = {name: pa.array(tokens, pa.string()) for name, tokens in state.vocabularies.items()}

    def transform(
        self, table: pa.Table, with_target: bool = True, read: dict[str, list[ReadColumn]] | None = None
    ) -> dict[str, torch.Tensor]:
        """Encode a whole table. Unknown values map to OOV, nulls to the mean / OOV / an empty sequence.

        Each output is allocated once, at its final dtype and shape, and filled column by column, piece by
        piece (see _standardise_into): its size, not a multiple of the table's, is what this adds to memory.
        `read`: categorical columns the fit already read (`Preprocessor.fit_transform`), per row range of
        `row_ranges`, so their strings are not hashed a second time.
        """
        encoded = read or {}
        n = table.num_rows
        batch: dict[str, torch.Tensor] = {}
        categorical_columns = self.state.categorical
        numeric = _empty((n, len(self.numeric)), torch.float32) if self.numeric else None
        categorical = _empty((n, len(categorical_columns)), torch.int64) if categorical_columns else None
        target = None
        if with_target:
            target = _empty((n,), self.task.target_dtype)

        def fill(part: int, start: int, stop: int) -> None:
            # rows start..stop of every flat output; workers take contiguous row ranges, so no two of them
            # write the same cache lines
            rows = table.slice(start, stop - start)
            if numeric is not None:
                self._standardise_into(numeric[start:stop], rows, np.empty(min(BLOCK_ROWS, stop - start), np.float64))
            for j, c in enumerate(categorical_columns):
                if c.name in encoded:  # read in the fit: no second pass over the strings
                    encoded[c.name][part].codes_into(categorical[start:stop, j], self._arrow_vocab[c.vocab])  # type: ignore[index]
                else:
                    self.codes_into(categorical[start:stop, j], rows[c.name], c.vocab)  # type: ignore[index]
            if target is not None:
                self._target_into(target[start:stop], rows[self.target.name])

        run_all([partial(fill, k, a, b) for k, (a, b) in enumerate(row_ranges(n))], n)
        if numeric is not None:
            batch["numeric"] = torch.from_numpy(numeric)
        if categorical is not None:
            batch["categorical"] = torch.from_numpy(categorical)
        if self.state.sequence:
            matrix, lengths = self._sequence_matrix(_combine(table[self.state.sequence.name]))
            batch["sequence"], batch["lengths"] = torch.from_numpy(matrix), torch.from_numpy(lengths)
        if self.state.text:
            batch["text"] = torch.from_numpy(self._text_matrix(_combine(table[self.state.text.name])))
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
        no full-size float64 temporary is built; `scratch` (float64, BLOCK_ROWS long) holds each result. One
        finiteness check per block, over its rows of `out` (contiguous, in cache), finds the rare block with
        a null, NaN or inf; only there are the values read again to zero those rows.
        """
        block = max(1, min(BLOCK_ROWS, SLICE_ROWS))
        first = 0
        # record batches: every column one Array over the same rows, cut at every column's chunk boundaries
        # without copying, so a float64 column without nulls is read in place
        for window in table.select([f.name for f in self.numeric]).to_batches(max_chunksize=SLICE_ROWS):
            columns = [_float64_values(column) for column in window.columns]
            for start in range(0, window.num_rows, block):
                stop = min(start + block, window.num_rows)
                rows = out[first + start : first + stop]
                for j, (f, values) in enumerate(zip(self.numeric, columns, strict=True)):
                    scaled = np.subtract(values[start:stop], f.mean, out=scratch[: stop - start])
                    scaled /= f.std
                    rows[:, j] = scaled
                if not _all_finite(rows):  # a value not finite (or one past float32's range, left as it is)
                    for j, values in enumerate(columns):
                        rows[~np.isfinite(values[start:stop]), j] = 0.0
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

    def codes_into(self, out: np.ndarray, column: pa.ChunkedArray | pa.Array, vocab: str) -> None:
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
        self.codes_into(codes, column, vocab)
        return codes

    def _sequence_matrix(self, column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """The last max_len non-null items of each list, right-padded; built without a per-row loop."""
        sequence = self.state.sequence
        assert sequence is not None
        max_len = sequence.max_len
        flat = pc.list_flatten(column)
        lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        valid = pc.is_valid(flat).to_numpy(zero_copy_only=False)
        codes = self._table_codes(flat, sequence.vocab)[valid]
        # null elements (e.g. from ARRAY_AGG over NULLs) are dropped, not treated as items
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        kept_before = np.concatenate([[0], np.cumsum(valid)])
        ends = kept_before[offsets[1:]]
        starts = np.maximum(kept_before[offsets[:-1]], ends - max_len)
        row_lengths = ends - starts
        return left_aligned(codes, starts, row_lengths, max_len), row_lengths.astype(np.int64)

    def _text_matrix(self, column: pa.Array) -> np.ndarray:
        """Hashed tokens, first max_tokens per row; crc32 runs once per distinct token, not per occurrence."""
        text = self.state.text
        assert text is not None
        buckets, max_tokens = text.buckets, text.max_tokens
        split = pc.split_pattern_regex(pc.fill_null(pc.utf8_lower(column.cast(pa.string())), ""), r"[^\w]+")
        flat = pc.list_flatten(split)
        lengths = pc.list_value_length(split).to_numpy(zero_copy_only=False).astype(np.int64)
        keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
        encoded = pc.dictionary_encode(flat)
        unique = encoded.dictionary.to_pylist()
        hashed = np.array([hash_token(t, buckets) if t else PAD for t in unique] or [PAD], dtype=np.int64)
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
