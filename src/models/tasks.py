"""One Task object per target kind: everything that depends on what the model's output means.

A Task owns the loss, the output activation and size, the target's dtype and encoding, the metrics,
the serving response and what a constant baseline predicts. Models, baselines, evaluation, metrics and
preprocessing ask the task (`task_named(kind)`); nothing else branches on the target's kind. Each kind
is registered in `rscale.compiler.spec.tasks.TASKS` (its light config: the spec-level task it serves,
when it claims a target, its metrics) with the dotted path of its object here, so a new task is one
Task subclass plus its registration.

Output layouts: item scores [B, n_items] (ranking), one logit [B] (binary), logits [B, C] (multiclass),
a standardised value [B] (regression).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F

from rscale.compiler.spec.tasks import TASKS
from rscale.models import metrics as metric_functions
from rscale.models.fitted import SequenceVocabulary, TargetEncoding
from rscale.models.metrics import RowOutputs
from rscale.models.preprocess import (
    IGNORE_CLASS,
    OOV,
    RESERVED,
    SLICE_ROWS,
    _all_finite,
    _finite_mean_std,
    _float_slices,
    _vocabulary,
)

if TYPE_CHECKING:
    from rscale.models.table_encoder import TableEncoder

MISSED = 1 << 30  # the rank of a target the model cannot rank (unknown item)
Respond = Callable[[torch.Tensor], list[dict[str, Any]]]


class PredictionNotFinite(ValueError):
    """The model's output holds NaN or an infinity: not JSON, so no answer can carry it."""


@dataclass(frozen=True)
class Responder:
    """Model output -> one response per record: as dicts (the Python API) and as JSON text (the server)."""

    description: dict[str, Any]
    records: Respond
    texts: Callable[[torch.Tensor], list[str]]


def json_texts(records: Respond) -> Callable[[torch.Tensor], list[str]]:
    """JSON texts of the responses `records` makes, one C-encoder call each; NaN or infinity raises."""
    from rscale.serving.server import dumps

    def texts(output: torch.Tensor) -> list[str]:
        try:
            return [dumps(record) for record in records(output)]
        except ValueError as exc:
            raise PredictionNotFinite(str(exc)) from exc

    return texts


@cache
def task_named(kind: str) -> Task:
    """The Task registered for a target kind (`preprocess.json`'s target.kind, model_config's shapes)."""
    task = TASKS.load(kind)
    if not isinstance(task, Task):
        raise TypeError(f"task {kind!r} is registered with {task!r}, which is not a rscale.models.tasks.Task")
    return task


class Task:
    """The base: a single output per row, trained as is. Subclasses override what their kind changes."""

    kind = "task"
    target_dtype = torch.float32
    classifies = False  # whether a baseline fits a classifier (class probabilities) or a regressor
    shares_item_space = False  # whether the target is the next item of a sequence input (one vocabulary for both)

    # --- the model's output ------------------------------------------------------------------------------
    def n_outputs(self, shapes: dict[str, Any]) -> int:
        """How many values the model's last layer emits per row."""
        return 1

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        """The output as probabilities (or the value itself)."""
        return output.reshape(-1)

    def summarise(
        self, output: torch.Tensor, target: torch.Tensor, shapes: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What validation and evaluation keep per batch to compute metrics at the end (small: ranks, not
        score matrices), and the target in the same units."""
        return self.activate(output.detach().float()), target

    # --- target encoding ---------------------------------------------------------------------------------
    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.int64 if self.target_dtype == torch.int64 else np.float32)

    def fit_target(
        self, column: pa.ChunkedArray | pa.Array, vocabularies: dict[str, list[str]], sequence: SequenceVocabulary | None
    ) -> dict[str, Any]:
        """The fitted target state (beside `name` and `kind`) from the training column; may add a vocabulary."""
        return {}

    def encode_target_into(self, encoder: TableEncoder, out: np.ndarray, column: pa.ChunkedArray | pa.Array) -> None:
        """out = the target as training reads it (index, 0/1 or standardised value); nulls and NaN give 0."""
        _floats_into(out, column)

    def target_values(self, encoder: TableEncoder, column: pa.Array) -> np.ndarray:
        """The target as metrics read it (class or item index, 0/1, or the raw value)."""
        return encoder.transform_target(column).numpy()

    def shapes(self, target: TargetEncoding, vocabularies: dict[str, list[str]]) -> dict[str, Any]:
        """The sizes a module needs for its output layer."""
        return {"n_items": 0, "n_classes": 1}

    # --- metrics -----------------------------------------------------------------------------------------
    def scored(self, target: np.ndarray) -> np.ndarray:
        """Which rows a metric (and a baseline) can use: all, but a class unseen in training."""
        return np.ones(len(target), dtype=bool)

    def row_outputs(self, values: np.ndarray, target: np.ndarray) -> RowOutputs:
        """Per-row outputs (what the gate's bootstrap resamples) from summarised values and targets."""
        keep = self.scored(target)
        return RowOutputs(self.kind, target[keep], values[keep])

    def metrics(self, names: Sequence[str], outputs: RowOutputs) -> dict[str, float]:
        raise NotImplementedError

    def weighted_metric(self, metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
        """The metric on each bootstrap resample, [b], from count weights [b, n]."""
        raise NotImplementedError

    # --- serving -----------------------------------------------------------------------------------------
    def describe_response(self, target: TargetEncoding, top_k: int) -> dict[str, Any]:
        """The response's fields, for the package manifest."""
        raise NotImplementedError

    def respond(self, target: TargetEncoding, vocabularies: dict[str, list[str]], top_k: int) -> Respond:
        """A function from the module's raw output to one response dict per row, lookups prepared once."""
        raise NotImplementedError

    def responder(self, target: TargetEncoding, vocabularies: dict[str, list[str]], top_k: int) -> Responder:
        """What the serving codec answers with: the description, the dicts, and their JSON texts (a task
        whose answers are flat columns overrides this with a faster text path)."""
        records = self.respond(target, vocabularies, top_k)
        return Responder(self.describe_response(target, top_k), records, json_texts(records))

    # --- the constant baseline ---------------------------------------------------------------------------
    def prior(self, target: np.ndarray, shapes: dict[str, Any]) -> np.ndarray:
        """What a constant baseline learns from the encoded training target."""
        raise NotImplementedError(f"no constant baseline for {self.kind} targets")

    def constant(self, prior: np.ndarray, rows: int) -> np.ndarray:
        """The constant baseline's per-row values (as `summarise` gives the model's) for `rows` rows."""
        raise NotImplementedError(f"no constant baseline for {self.kind} targets")


def _floats_into(
    out: np.ndarray, column: pa.ChunkedArray | pa.Array, mean: float | None = None, std: float = 1.0
) -> None:
    """out = the column as floats, standardised when `mean` is given; nulls, NaN and inf give 0."""
    scratch = np.empty(min(SLICE_ROWS, len(column)), dtype=np.float64) if mean is not None else None
    for start, values in _float_slices(column):
        if scratch is not None and mean is not None:
            values = np.subtract(values, mean, out=scratch[: len(values)])
            values /= std
        if not _all_finite(values):
            values = np.nan_to_num(values)
        out[start : start + len(values)] = values


class Binary(Task):
    """A yes/no target: one logit; P(1) through a sigmoid; binary cross-entropy."""

    kind = "binary"
    classifies = True

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(output.reshape(-1), target)

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output.reshape(-1))

    def row_outputs(self, values: np.ndarray, target: np.ndarray) -> RowOutputs:
        return RowOutputs(self.kind, target.astype(np.int64), values)

    def metrics(self, names: Sequence[str], outputs: RowOutputs) -> dict[str, float]:
        return metric_functions.classification_metrics(names, outputs.target, outputs.values)

    def weighted_metric(self, metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
        return metric_functions.weighted_classification_metric(metric, outputs, weights)

    def describe_response(self, target: TargetEncoding, top_k: int) -> dict[str, Any]:
        return {"probability": "P(target = 1)", "label": "1 if probability >= 0.5 else 0"}

    def respond(self, target: TargetEncoding, vocabularies: dict[str, list[str]], top_k: int) -> Respond:
        def binary(logits: torch.Tensor) -> list[dict[str, Any]]:
            return [{"probability": p, "label": int(p >= 0.5)} for p in torch.sigmoid(logits.reshape(-1)).tolist()]

        return binary

    def responder(self, target: TargetEncoding, vocabularies: dict[str, list[str]], top_k: int) -> Responder:
        """JSON formatted column-wise: one str.format per record, floats as JSON writes them (repr)."""
        text = '{"probability":%r,"label":%d}'.__mod__

        def texts(logits: torch.Tensor) -> list[str]:
            found = torch.sigmoid(logits.reshape(-1)).tolist()
            if not math.isfinite(sum(found)):  # a NaN makes the sum NaN; probabilities cannot overflow it
                raise PredictionNotFinite("the prediction is not a finite number")
            return list(map(text, zip(found, map(operator.ge, found, repeat(0.5)), strict=True)))

        return Responder(self.describe_response(target, top_k), self.respond(target, vocabularies, top_k), texts)

    def class_count(self, shapes: dict[str, Any]) -> int:
        """Classes a classifier baseline spreads probability over (0 and 1)."""
        return 2

    def class_scores(self, probabilities: np.ndarray) -> np.ndarray:
        """The per-row values from probabilities over every class [n, classes]: P(1)."""
        return probabilities[:, 1]

    def prior(self, target: np.ndarray, shapes: dict[str, Any]) -> np.ndarray:
        return np.array(float(target.mean()))  # the base rate: the majority label, AUC 0.5 by construction

    def constant(self, prior: np.ndarray, rows: int) -> np.ndarray:
        return np.full(rows, float(prior))


class Multiclass(Task):
    """One of the classes seen in training: a logit per class; softmax; cross-entropy that skips a class
    unseen in training (IGNORE_CLASS)."""

    kind = "multiclass"
    target_dtype = torch.int64
    classifies = True

    def n_outputs(self, shapes: dict[str, Any]) -> int:
        return int(shapes["n_classes"])

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target, ignore_index=IGNORE_CLASS)

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return torch.softmax(output, dim=-1)

    def fit_target(
        self, column: pa.ChunkedArray | pa.Array, vocabularies: dict[str, list[str]], sequence: SequenceVocabulary | None
    ) -> dict[str, Any]:
        return {"classes": sorted(_vocabulary(column))}

    def encode_target_into(self, encoder: TableEncoder, out: np.ndarray, column: pa.ChunkedArray | pa.Array) -> None:
        classes = pa.array(encoder.target.classes or (), pa.string())
        found = pc.fill_null(pc.index_in(column.cast(pa.string()), value_set=classes), IGNORE_CLASS)
        out[:] = found.to_numpy(zero_copy_only=False)

    def shapes(self, target: TargetEncoding, vocabularies: dict[str, list[str]]) -> dict[str, Any]:
        return {"n_items": 0, "n_classes": len(target.classes or ())}

    def scored(self, target: np.ndarray) -> np.ndarray:
        return np.asarray(target != IGNORE_CLASS)

    def metrics(self, names: Sequence[str], outputs: RowOutputs) -> dict[str, float]:
        return metric_functions.classification_metrics(names, outputs.target, outputs.values)

    def weighted_metric(self, metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
        return metric_functions.weighted_classification_metric(metric, outputs, weights)

    def describe_response(self, target: TargetEncoding, top_k: int) -> dict[str, Any]:
        return {
            "label": "the most probable class",
            "probabilities": "class -> probability",
            "classes": list(target.classes or ()),
        }

    def respond(self, target: TargetEncoding, vocabularies: dict[str, list[str]], top_k: int) -> Respond:
        classes = list(target.classes or ())

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

    def class_count(self, shapes: dict[str, Any]) -> int:
        return int(shapes["n_classes"])

    def class_scores(self, probabilities: np.ndarray) -> np.ndarray:
        return probabilities

    def prior(self, target: np.ndarray, shapes: dict[str, Any]) -> np.ndarray:
        counts = np.bincount(target[target >= 0], minlength=shapes["n_classes"]).astype(np.float64)
        return counts / counts.sum()  # the class frequencies

    def constant(self, prior: np.ndarray, rows: int) -> np.ndarray:
        return np.tile(prior, (rows, 1))


class Regression(Task):
    """A numeric value, learned standardised (mean 0, std 1 on train); mean squared error."""

    kind = "regression"

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output.reshape(-1), target)

    def summarise(
        self, output: torch.Tensor, target: torch.Tensor, shapes: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = shapes["target_std"], shapes["target_mean"]
        return output.detach().float().reshape(-1) * scale + shift, target * scale + shift

    def fit_target(
        self, column: pa.ChunkedArray | pa.Array, vocabularies: dict[str, list[str]], sequence: SequenceVocabulary | None
    ) -> dict[str, Any]:
        mean, std = _finite_mean_std(column)
        return {"mean": mean, "std": std if std > 1e-12 else 1.0}

    def encode_target_into(self, encoder: TableEncoder, out: np.ndarray, column: pa.ChunkedArray | pa.Array) -> None:
        _floats_into(out, column, encoder.target.mean, encoder.target.std if encoder.target.std is not None else 1.0)

    def target_values(self, encoder: TableEncoder, column: pa.Array) -> np.ndarray:
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]

    def metrics(self, names: Sequence[str], outputs: RowOutputs) -> dict[str, float]:
        return metric_functions.regression_metrics(names, outputs.target, outputs.values)

    def weighted_metric(self, metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
        return metric_functions.weighted_regression_metric(metric, outputs, weights)

    def describe_response(self, target: TargetEncoding, top_k: int) -> dict[str, Any]:
        return {"value": f"predicted {target.name}"}

    def values(self, target: TargetEncoding, output: torch.Tensor) -> list[float]:
        """The predictions in the target's units: the standardised output times std plus mean, in float64
        (a subclass that learns another scale overrides this, and its responses follow)."""
        return (output.reshape(-1).to(torch.float64) * float(target.std or 1.0) + float(target.mean or 0.0)).tolist()  # type: ignore[no-any-return]

    def respond(self, target: TargetEncoding, vocabularies: dict[str, list[str]], top_k: int) -> Respond:
        def regression(output: torch.Tensor) -> list[dict[str, Any]]:
            return [{"value": v} for v in self.values(target, output)]

        return regression

    def responder(self, target: TargetEncoding, vocabularies: dict[str, list[str]], top_k: int) -> Responder:
        """JSON formatted column-wise: one str.format per record, floats as JSON writes them (repr)."""
        text = '{"value":%r}'.__mod__

        def texts(output: torch.Tensor) -> list[str]:
            values = self.values(target, output)
            if not all(map(math.isfinite, values)):
                raise PredictionNotFinite("the prediction is not a finite number")
            return list(map(text, values))

        return Responder(self.describe_response(target, top_k), self.respond(target, vocabularies, top_k), texts)


class NextItemRanking(Task):
    """The next item over the whole catalogue: a score per item; softmax cross-entropy; metrics read the
    0-based rank of the true item (padding and out-of-vocabulary items are never ranked)."""

    kind = "ranking"
    target_dtype = torch.int64
    shares_item_space = True

    def n_outputs(self, shapes: dict[str, Any]) -> int:
        return int(shapes["n_items"])

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target, ignore_index=OOV)

    def activate(self, output: torch.Tensor) -> torch.Tensor:
        return torch.softmax(output, dim=-1)

    def summarise(
        self, output: torch.Tensor, target: torch.Tensor, shapes: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return ranks_of_targets(output.detach().float(), target), target

    def fit_target(
        self, column: pa.ChunkedArray | pa.Array, vocabularies: dict[str, list[str]], sequence: SequenceVocabulary | None
    ) -> dict[str, Any]:
        if sequence is not None:
            return {"vocab": sequence.vocab}  # one item space with the session's history
        vocabularies["__target__"] = _vocabulary(column)
        return {"vocab": "__target__"}

    def encode_target_into(self, encoder: TableEncoder, out: np.ndarray, column: pa.ChunkedArray | pa.Array) -> None:
        encoder.codes_into(out, column, encoder.target.vocab or "")

    def shapes(self, target: TargetEncoding, vocabularies: dict[str, list[str]]) -> dict[str, Any]:
        return {"n_items": len(vocabularies[target.vocab or ""]) + RESERVED, "n_classes": 1}

    def metrics(self, names: Sequence[str], outputs: RowOutputs) -> dict[str, float]:
        return metric_functions.ranking_metrics(names, outputs.values)

    def weighted_metric(self, metric: str, outputs: RowOutputs, weights: np.ndarray) -> np.ndarray:
        return metric_functions.weighted_ranking_metric(metric, outputs, weights)

    def describe_response(self, target: TargetEncoding, top_k: int) -> dict[str, Any]:
        return {"items": "top-k item ids, best first", "scores": "softmax probability of each item", "top_k": top_k}

    def respond(self, target: TargetEncoding, vocabularies: dict[str, list[str]], top_k: int) -> Respond:
        items = ["<pad>", "<oov>", *vocabularies[target.vocab or ""]]
        k = min(top_k, max(len(items) - RESERVED, 1))

        def ranking(scores: torch.Tensor) -> list[dict[str, Any]]:
            scores = scores.clone()
            scores[:, :RESERVED] = float("-inf")
            top = torch.topk(torch.softmax(scores, dim=-1), k, dim=-1)
            return [
                {"items": [items[i] for i in idx], "scores": vals}
                for idx, vals in zip(top.indices.tolist(), top.values.tolist(), strict=True)
            ]

        return ranking


def ranks_of_targets(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0-based rank of each row's target among real items (padding and OOV never ranked); MISSED if unknown."""
    scores = scores.clone()
    scores[:, :RESERVED] = float("-inf")
    target_scores = scores.gather(1, target.clamp(min=0).reshape(-1, 1))
    ranks = (scores > target_scores).sum(dim=1)
    return torch.where(target < RESERVED, torch.full_like(ranks, MISSED), ranks)


# the objects `spec.tasks.TASKS` registers (impl "rscale.models.tasks:<NAME>")
BINARY = Binary()
MULTICLASS = Multiclass()
REGRESSION = Regression()
RANKING = NextItemRanking()
