"""Baselines: the status quo a model must beat before it is deployed. Each fits on train and scores a table.

Baselines encode data with the same Preprocessor (fitted on train) as the model, so item and class
indices agree and an item unseen in training is a miss for both.
    popularity    the most frequent next items in training, the same list for everyone
    item_to_item  items that co-occur in training sessions with the LAST item of the history (closer
                  positions weigh more: 1/distance), filled up with popular items
    majority      the most frequent class (binary: the positive rate as the probability)
    logistic      logistic / softmax regression on standardised numerics and one-hot categoricals (torch)
    mean          the training mean
    linear        least squares (numpy) on the same features as logistic
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import torch

from rscale.models import metrics as metric_functions
from rscale.models.preprocess import PAD, RESERVED, Preprocessor


class Baseline:
    name = "baseline"

    def __init__(self) -> None:
        self.preprocessor: Preprocessor | None = None

    def fit(self, train: pa.Table, plan: Any) -> Baseline:
        self.preprocessor = Preprocessor.fit(plan, train)
        self.plan = plan
        self._fit(self.preprocessor.transform(train), train)
        return self

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        raise NotImplementedError

    def score(self, test: pa.Table, plan: Any | None = None) -> dict[str, float]:
        """The spec's metrics of this baseline on `test`, keyed as the spec names them."""
        assert self.preprocessor is not None, "fit first"
        names = list((plan or self.plan).evaluate.metrics)
        return self._score(self.preprocessor.transform(test), test, names)

    def _score(self, batch: dict[str, torch.Tensor], table: pa.Table, names: list[str]) -> dict[str, float]:
        raise NotImplementedError


# --- ranking --------------------------------------------------------------------------------------
class Popularity(Baseline):
    name = "popularity"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        target = batch["target"].numpy()
        counts = np.bincount(target, minlength=self.preprocessor.shapes()["n_items"]).astype(np.float64)  # type: ignore[union-attr]
        counts[:RESERVED] = -1  # padding and OOV are never recommended
        self.counts = counts
        ranking = np.argsort(-counts, kind="stable")
        self.ranking = ranking[ranking >= RESERVED]

    def top_k(self, batch: dict[str, torch.Tensor], k: int) -> np.ndarray:
        top = np.full(k, -1, dtype=np.int64)  # a catalogue smaller than k leaves -1 (never a match)
        top[: min(k, len(self.ranking))] = self.ranking[:k]
        return np.broadcast_to(top, (len(batch["target"]), k))

    def _score(self, batch: dict[str, torch.Tensor], table: pa.Table, names: list[str]) -> dict[str, float]:
        k = metric_functions.max_k(names)
        target = batch["target"].numpy()
        ranks = metric_functions.ranks_from_top_k(self.top_k(batch, k), target)
        ranks = np.where(target < RESERVED, k, ranks)  # an unknown item is a miss, never a match with OOV
        return metric_functions.ranking_metrics(names, ranks)


class ItemToItem(Popularity):
    name = "item_to_item"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        super()._fit(batch, table)
        n_items = len(self.counts)
        sequence, lengths, target = batch["sequence"].numpy(), batch["lengths"].numpy(), batch["target"].numpy()
        # the whole session: history, then the next item right after its last position
        full = np.concatenate([sequence, np.zeros((len(sequence), 1), dtype=np.int64)], axis=1)
        full[np.arange(len(full)), lengths] = target
        pair_codes, pair_weights = [], []
        for distance in range(1, full.shape[1]):
            a, b = full[:, :-distance].ravel(), full[:, distance:].ravel()
            keep = (a >= RESERVED) & (b >= RESERVED) & (a != b)
            a, b = a[keep], b[keep]
            weight = np.full(len(a), 1.0 / distance)
            pair_codes += [a * n_items + b, b * n_items + a]
            pair_weights += [weight, weight]
        k = max(metric_functions.max_k(self.plan.evaluate.metrics), int(self.preprocessor.state["top_k"]))  # type: ignore[union-attr]
        self.k = k
        neighbours = np.full((n_items, k), -1, dtype=np.int64)
        if pair_codes:
            codes, inverse = np.unique(np.concatenate(pair_codes), return_inverse=True)
            weights = np.bincount(inverse, weights=np.concatenate(pair_weights))
            source, candidate = codes // n_items, codes % n_items
            # strongest first within each source item; ties broken by popularity, then index
            order = np.lexsort((candidate, -self.counts[candidate], -weights, source))
            source, candidate = source[order], candidate[order]
            first = np.searchsorted(source, source, side="left")
            position = np.arange(len(source)) - first
            inside = position < k
            neighbours[source[inside], position[inside]] = candidate[inside]
        self.table = self._fill_with_popular(neighbours, k)

    def _fill_with_popular(self, neighbours: np.ndarray, k: int) -> np.ndarray:
        popular = self.ranking[: 2 * k]
        table = neighbours.copy()
        for row in np.flatnonzero((neighbours < 0).any(axis=1)):  # once per item, not per request
            known = [c for c in neighbours[row] if c >= 0]
            fill = [c for c in popular if c not in known][: k - len(known)]
            table[row, : len(known) + len(fill)] = known + fill
        return table

    def top_k(self, batch: dict[str, torch.Tensor], k: int) -> np.ndarray:
        sequence, lengths = batch["sequence"].numpy(), batch["lengths"].numpy()
        last = np.where(lengths > 0, sequence[np.arange(len(sequence)), np.maximum(lengths - 1, 0)], PAD)
        return self.table[last, :k]


# --- classification -------------------------------------------------------------------------------
def _design(preprocessor: Preprocessor, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """Standardised numerics plus one-hot categoricals (OOV gets its own column), and an intercept."""
    parts = [np.ones((len(batch["target"]), 1))]
    if "numeric" in batch:
        parts.append(batch["numeric"].numpy().astype(np.float64))
    if "categorical" in batch:
        codes = batch["categorical"].numpy()
        for i, size in enumerate(preprocessor.shapes()["categorical_sizes"]):
            parts.append(np.eye(size)[codes[:, i]][:, 1:])
    return np.concatenate(parts, axis=1)


class Majority(Baseline):
    name = "majority"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        target = batch["target"].numpy()
        if self.preprocessor.target["kind"] == "binary":  # type: ignore[union-attr]
            self.rate = float(target.mean())
        else:
            n = self.preprocessor.shapes()["n_classes"]  # type: ignore[union-attr]
            counts = np.bincount(target[target >= 0], minlength=n).astype(np.float64)
            self.rate = counts / counts.sum()

    def probabilities(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        n = len(batch["target"])
        if isinstance(self.rate, float):
            # the majority label, with the base rate as its probability (AUC 0.5 by construction)
            return np.full(n, self.rate)
        return np.tile(self.rate, (n, 1))

    def _score(self, batch: dict[str, torch.Tensor], table: pa.Table, names: list[str]) -> dict[str, float]:
        target = batch["target"].numpy()
        probabilities = self.probabilities(batch)
        if probabilities.ndim == 1:
            out = metric_functions.classification_metrics(names, target, probabilities)
            label = int(self.rate >= 0.5)  # type: ignore[operator]
            if "accuracy" in names:
                out["accuracy"] = metric_functions.accuracy(target, np.full(len(target), label))
            if "f1" in names:
                out["f1"] = metric_functions.f1(target, np.full(len(target), label))
            return out
        keep = target >= 0
        return metric_functions.classification_metrics(names, target[keep], probabilities[keep])


class Logistic(Baseline):
    name = "logistic"
    steps = 300

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        x = torch.from_numpy(_design(self.preprocessor, batch)).float()  # type: ignore[arg-type]
        target = batch["target"]
        binary = self.preprocessor.target["kind"] == "binary"  # type: ignore[union-attr]
        outputs = 1 if binary else self.preprocessor.shapes()["n_classes"]  # type: ignore[union-attr]
        weights = torch.zeros(x.shape[1], outputs, requires_grad=True)
        optimizer = torch.optim.LBFGS([weights], lr=0.5, max_iter=self.steps, line_search_fn="strong_wolfe")
        penalty = 1e-4  # a little L2 keeps separable data from diverging

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            logits = x @ weights
            if binary:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), target)
            else:
                loss = torch.nn.functional.cross_entropy(logits, target, ignore_index=-100)
            loss = loss + penalty * (weights[1:] ** 2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        self.weights, self.binary = weights.detach(), binary

    def _score(self, batch: dict[str, torch.Tensor], table: pa.Table, names: list[str]) -> dict[str, float]:
        x = torch.from_numpy(_design(self.preprocessor, batch)).float()  # type: ignore[arg-type]
        logits = x @ self.weights
        target = batch["target"].numpy()
        if self.binary:
            return metric_functions.classification_metrics(names, target, torch.sigmoid(logits.squeeze(1)).numpy())
        keep = target >= 0
        return metric_functions.classification_metrics(names, target[keep], torch.softmax(logits, 1).numpy()[keep])


# --- regression -----------------------------------------------------------------------------------
class Mean(Baseline):
    name = "mean"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        self.mean = float(np.nanmean(self.preprocessor.target_values(_target_column(self, table))))  # type: ignore[union-attr]

    def _score(self, batch: dict[str, torch.Tensor], table: pa.Table, names: list[str]) -> dict[str, float]:
        y = self.preprocessor.target_values(_target_column(self, table))  # type: ignore[union-attr]
        return metric_functions.regression_metrics(names, y, np.full(len(y), self.mean))


class Linear(Baseline):
    name = "linear"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        y = np.nan_to_num(self.preprocessor.target_values(_target_column(self, table)))  # type: ignore[union-attr]
        self.coefficients, *_ = np.linalg.lstsq(_design(self.preprocessor, batch), y, rcond=None)  # type: ignore[arg-type]

    def _score(self, batch: dict[str, torch.Tensor], table: pa.Table, names: list[str]) -> dict[str, float]:
        y = self.preprocessor.target_values(_target_column(self, table))  # type: ignore[union-attr]
        prediction = _design(self.preprocessor, batch) @ self.coefficients  # type: ignore[arg-type]
        return metric_functions.regression_metrics(names, y, prediction)


def _target_column(baseline: Baseline, table: pa.Table) -> pa.Array:
    return table[baseline.preprocessor.target["name"]].combine_chunks()  # type: ignore[union-attr]


BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls for cls in (Popularity, ItemToItem, Majority, Logistic, Mean, Linear)
}


def fit_baseline(name: str, train: pa.Table, plan: Any) -> Baseline:
    """Fit the named baseline (as `evaluate.baseline` names it) on the training table."""
    try:
        return BASELINES[name]().fit(train, plan)
    except KeyError:
        from rscale.errors import RscaleError

        raise RscaleError(f"unknown baseline {name!r}", fix=f"use one of {', '.join(BASELINES)}") from None
