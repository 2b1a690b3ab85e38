"""Baselines: the status quo a model must beat before it is deployed. Each fits on train and scores a table.

Each is registered in `rscale.compiler.spec.evaluate.BASELINES` (its config declares the tasks it fits and
its defaults); the evaluate step fits every baseline the spec names, or the task's defaults, and the gate
compares with the strongest. They follow what a practitioner would write first, and say whose:

    popularity    the most frequent next items in training, one list for everyone (POP in Ludewig &
                  Jannach, "Evaluation of session-based recommendation algorithms", 2018)
    item_to_item  DIRECTED transitions from the history's last item: a -> b counted over consecutive pairs
                  of every training session (history, then its next item), repeats a -> a kept (the
                  first-order Markov "SR/AR" rules of the same evaluation); ties and empty slots filled by
                  symmetric co-occurrence within sessions (Linden, Smith & York, Amazon.com, 2003), then
                  by popularity
    session_knn   V-SKNN (Ludewig & Jannach 2018; Jannach & Ludewig, "When recurrent neural networks meet
                  the neighborhood", RecSys 2017): the current session as a vector with linearly decaying
                  weights (last item 1, first 1/L), cosine similarity to the binary item sets of training
                  sessions, the k most similar among the `sample` most recent sessions that share an item,
                  items scored by the summed similarity of the neighbours that contain them (the papers'
                  k=100, sample=1000), then popularity
    majority      the class prior (binary: the positive rate as the probability), scikit-learn's DummyClassifier
    logistic      L2-regularised logistic / softmax regression, scikit-learn's defaults (C = 1), on
                  standardised numerics and one-hot categoricals (the 100 most frequent values each)
    mean          the training mean (DummyRegressor)
    linear        least squares on the same features as logistic
    gbdt          scikit-learn's HistGradientBoosting{Classifier,Regressor} with its defaults (LightGBM's
                  algorithm; categoricals native), scikit-learn is a dependency of rscale

Baselines encode data with the same Preprocessor (fitted on train) as the model, so item and class
indices agree and an item unseen in training is a miss for both. `outputs(test)` gives the per-row
values (ranks, probabilities, predictions) the gate's paired bootstrap resamples.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from rscale.compiler.spec.evaluate import BASELINES, BaselineConfig, baseline_config
from rscale.errors import RscaleError
from rscale.models import metrics as metric_functions
from rscale.models.metrics import RowOutputs
from rscale.models.preprocess import PAD, RESERVED, Preprocessor

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

ONE_HOT_VALUES = 100  # most frequent values of a categorical that get their own column in linear baselines


class Baseline:
    name = "baseline"

    def __init__(self, config: BaselineConfig | None = None) -> None:
        self.config = config if config is not None else baseline_config(self.name)
        self.preprocessor: Preprocessor | None = None

    def fit(self, train: pa.Table, plan: Plan) -> Baseline:
        self.preprocessor = Preprocessor.fit(plan, train)
        self.plan = plan
        self._fit(self.preprocessor.transform(train), train)
        return self

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        raise NotImplementedError

    def outputs(self, test: pa.Table) -> RowOutputs:
        """Per-row outputs on `test`: ranks of the true item, probabilities or predictions."""
        assert self.preprocessor is not None, "fit first"
        return self._outputs(self.preprocessor.transform(test), test)

    def _outputs(self, batch: dict[str, torch.Tensor], table: pa.Table) -> RowOutputs:
        raise NotImplementedError

    def score(self, test: pa.Table, plan: Plan | None = None) -> dict[str, float]:
        """The spec's metrics of this baseline on `test`, keyed as the spec names them."""
        return metric_functions.metrics_of(list((plan or self.plan).evaluate.metrics), self.outputs(test))

    @property
    def task(self) -> Any:
        """The target's Task (rscale.models.tasks): what the baseline's outputs mean and how they are scored."""
        return self.preprocessor.task  # type: ignore[union-attr]


# --- ranking --------------------------------------------------------------------------------------
class Popularity(Baseline):
    name = "popularity"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        target = batch["target"].numpy()
        self.n_items = self.preprocessor.shapes()["n_items"]  # type: ignore[union-attr]
        counts = np.bincount(target, minlength=self.n_items).astype(np.float64)
        counts[:RESERVED] = -1  # padding and OOV are never recommended
        self.counts = counts
        ranking = np.argsort(-counts, kind="stable")
        self.ranking = ranking[ranking >= RESERVED]
        self.k = max(metric_functions.max_k(self.plan.evaluate.metrics), self.preprocessor.state.top_k)  # type: ignore[union-attr]

    def top_k(self, batch: dict[str, torch.Tensor], k: int) -> np.ndarray:
        top = np.full(k, -1, dtype=np.int64)  # a catalogue smaller than k leaves -1 (never a match)
        top[: min(k, len(self.ranking))] = self.ranking[:k]
        return np.broadcast_to(top, (len(batch["target"]), k))

    def _outputs(self, batch: dict[str, torch.Tensor], table: pa.Table) -> RowOutputs:
        target = batch["target"].numpy()
        ranks = metric_functions.ranks_from_top_k(self.top_k(batch, self.k), target)
        ranks = np.where(target < RESERVED, self.k, ranks)  # an unknown item is a miss, never a match with OOV
        return RowOutputs("ranking", target, ranks)

    @staticmethod
    def whole_sessions(batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """Training sessions as [n, max_len + 1] item ids (history, then the next item, right-padded) and lengths."""
        sequence, lengths, target = batch["sequence"].numpy(), batch["lengths"].numpy(), batch["target"].numpy()
        full = np.concatenate([sequence, np.zeros((len(sequence), 1), dtype=np.int64)], axis=1)
        full[np.arange(len(full)), lengths] = target
        return full, lengths + 1

    @staticmethod
    def last_items(batch: dict[str, torch.Tensor]) -> np.ndarray:
        sequence, lengths = batch["sequence"].numpy(), batch["lengths"].numpy()
        return np.where(lengths > 0, sequence[np.arange(len(sequence)), np.maximum(lengths - 1, 0)], PAD)


class ItemToItem(Popularity):
    name = "item_to_item"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        super()._fit(batch, table)
        n_items, k = self.n_items, self.k
        full, _ = self.whole_sessions(batch)
        # directed transitions a -> b over consecutive positions, a -> a included (a repeat is a real next item)
        # and, the fallback that ranks the remaining slots, symmetric co-occurrence anywhere in the same
        # session; counted distance by distance, so memory holds one distance's pairs and the distinct pairs
        codes: np.ndarray = np.zeros(0, np.int64)
        transitions: np.ndarray = np.zeros(0)
        cooccurrences: np.ndarray = np.zeros(0)
        for distance in range(1, full.shape[1]):
            a, b = full[:, :-distance].ravel(), full[:, distance:].ravel()
            keep = (a >= RESERVED) & (b >= RESERVED)
            a, b = a[keep], b[keep]
            found, counts = np.unique(np.concatenate([a * n_items + b, b * n_items + a]), return_counts=True)
            step = np.zeros(len(found))
            if distance == 1:
                directed, directed_counts = np.unique(a * n_items + b, return_counts=True)
                step[np.searchsorted(found, directed)] = directed_counts
            codes, inverse = np.unique(np.concatenate([codes, found]), return_inverse=True)
            transitions = np.bincount(inverse, weights=np.concatenate([transitions, step]), minlength=len(codes))
            cooccurrences = np.bincount(
                inverse, weights=np.concatenate([cooccurrences, counts.astype(np.float64)]), minlength=len(codes)
            )
        source, candidate = codes // n_items, codes % n_items
        # strongest first within each source item: transitions, then co-occurrence, then popularity, then index
        order = np.lexsort((candidate, -self.counts[candidate], -cooccurrences, -transitions, source))
        source, candidate = source[order], candidate[order]
        position = np.arange(len(source)) - np.searchsorted(source, source, side="left")
        inside = position < k
        neighbours = np.full((n_items, k), -1, dtype=np.int64)
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
        return self.table[self.last_items(batch), :k]


class SessionKNN(Popularity):
    """V-SKNN over sparse session-item matrices (torch sparse CSR), scored in chunks of test sessions.

    similarity(s, n) = sum over items i in both of w_s(i) / sqrt(|s| * |n|), w_s(i) = (position of i in s + 1) / |s|
    (the latest position when an item repeats); score(i) = sum of similarity over the k nearest neighbours
    that contain i; a small popularity term orders the items no neighbour has.
    """

    name = "session_knn"
    CELLS = 1 << 23  # test sessions x training sessions held at once (64 MiB of float64 similarities)

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        super()._fit(batch, table)
        full, lengths = self.whole_sessions(batch)
        # most recent sessions first: by the data's time column where the table has it, else the later row
        time_column = getattr(getattr(self.plan, "data", None), "time_column", None)
        if time_column and time_column in table.column_names:
            order = pc.sort_indices(table, sort_keys=[(time_column, "descending", "at_end")])
            recency = order.to_numpy(zero_copy_only=False)
        else:
            recency = np.arange(len(full))[::-1]
        full = full[recency]
        rows = np.repeat(np.arange(len(full)), full.shape[1])
        items = full.ravel()
        keep = items >= RESERVED
        rows, items = rows[keep], items[keep]
        codes = np.unique(rows * self.n_items + items)  # binary item sets: a repeat counts once
        rows, items = codes // self.n_items, codes % self.n_items
        self.sessions = len(full)
        size = np.bincount(rows, minlength=len(full)).astype(np.float32)
        self.session_items = _csr(rows, items, np.ones(len(rows)), len(full))  # binary item sets
        # cosine's 1/sqrt(|n|) rides on the postings, so gathering them gives the similarity's terms
        self.item_sessions = _csr(items, rows, 1.0 / np.sqrt(np.maximum(size, 1.0))[rows], self.n_items)
        popularity = np.maximum(self.counts, 0)
        self.tiebreak = torch.from_numpy(popularity / max(popularity.max(), 1.0) * 1e-6)

    def top_k(self, batch: dict[str, torch.Tensor], k: int) -> np.ndarray:
        sequence, lengths = batch["sequence"], batch["lengths"]
        n = len(sequence)
        chunk = max(1, min(1024, self.CELLS // max(self.sessions, self.n_items, 1)))
        out = np.empty((n, k), dtype=np.int64)
        for start in range(0, n, chunk):
            out[start : start + chunk] = self._top_k(sequence[start : start + chunk], lengths[start : start + chunk], k)
        return out

    def _top_k(self, sequence: torch.Tensor, lengths: torch.Tensor, k: int) -> np.ndarray:
        """Top-k items for b test sessions; similarities are [b, training sessions], newest session first.

        Both products (current sessions x training sessions, neighbours x items) are gathered from CSR rows
        and summed with bincount: their cost is the postings touched, not the matrices' size.
        """
        b, width = sequence.shape
        # the current session's distinct items, weight (latest position + 1) / length
        sequence_np, lengths_np = sequence.numpy(), lengths.numpy()
        positions = np.arange(width)[None, :]
        valid = (positions < lengths_np[:, None]) & (sequence_np >= RESERVED)
        row, position = np.nonzero(valid)
        codes = row * self.n_items + sequence_np[row, position]
        codes, last = np.unique(codes[::-1], return_index=True)  # reversed: the first hit is the latest position
        weight = (position[::-1][last] + 1) / lengths_np[codes // self.n_items]
        row, item = codes // self.n_items, codes % self.n_items
        weight /= np.sqrt(np.bincount(row, minlength=b)[row])  # cosine's 1/sqrt(|s|)
        sessions, normed = self._rows(self.item_sessions, item)
        similarity = torch.from_numpy(
            np.bincount(
                np.repeat(row, sessions.sizes) * self.sessions + sessions.columns,
                weights=np.repeat(weight, sessions.sizes) * normed,
                minlength=b * self.sessions,
            ).reshape(b, self.sessions)
        )
        config: Any = self.config
        self._keep_most_recent(similarity, config.sample)
        nearest = torch.topk(similarity, min(config.neighbours, self.sessions), dim=1)
        # each neighbour votes its similarity for each of its items
        neighbour, vote = nearest.indices.numpy().ravel(), nearest.values.numpy().ravel()
        items, _ = self._rows(self.session_items, neighbour)
        votes = np.bincount(
            np.repeat(np.repeat(np.arange(b), nearest.indices.shape[1]), items.sizes) * self.n_items + items.columns,
            weights=np.repeat(vote, items.sizes),
            minlength=b * self.n_items,
        ).reshape(b, self.n_items)
        scores = torch.from_numpy(votes) + self.tiebreak
        scores[:, :RESERVED] = float("-inf")
        top = torch.topk(scores, min(k, self.n_items - RESERVED), dim=1).indices.numpy()
        if top.shape[1] < k:
            top = np.concatenate([top, np.full((b, k - top.shape[1]), -1)], axis=1)
        return top

    @staticmethod
    def _rows(matrix: Any, rows: np.ndarray) -> tuple[Any, np.ndarray]:
        """The column indices and values of `rows` of a CSR matrix, concatenated, with each row's size."""
        indptr = matrix["indptr"]
        sizes = indptr[rows + 1] - indptr[rows]
        at = np.repeat(indptr[rows] - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
        return _Gathered(matrix["columns"][at], sizes), matrix["values"][at]

    BLOCK = 1024

    def _keep_most_recent(self, similarity: torch.Tensor, sample: int) -> None:
        """Zero every session past the `sample` most recent (leftmost) ones that share an item, row by row.

        Counts per block of BLOCK columns find the block where the sample fills up; only that block is
        counted column by column, so no full-width cumulative sum is needed.
        """
        b, sessions = similarity.shape
        if sessions <= sample:
            return
        shares = (similarity > 0).numpy()
        starts = np.arange(0, sessions, self.BLOCK)
        filled = np.cumsum(np.add.reduceat(shares, starts, axis=1, dtype=np.int32), axis=1)
        block = (filled < sample).sum(axis=1)  # the block where the sample fills up; len(starts): never
        rows = np.flatnonzero(block < len(starts))
        if not len(rows):
            return
        before = np.where(block[rows] > 0, filled[rows, np.maximum(block[rows] - 1, 0)], 0)
        columns = np.minimum(starts[block[rows]][:, None] + np.arange(self.BLOCK), sessions - 1)
        inside = np.cumsum(shares[rows[:, None], columns], axis=1) >= (sample - before)[:, None]
        last = np.full(b, sessions, dtype=np.int64)
        last[rows] = columns[np.arange(len(rows)), inside.argmax(axis=1)]
        similarity.masked_fill_(torch.arange(sessions).unsqueeze(0) > torch.from_numpy(last).unsqueeze(1), 0.0)


class _Gathered(NamedTuple):
    columns: np.ndarray
    sizes: np.ndarray


def _csr(rows: np.ndarray, columns: np.ndarray, values: np.ndarray, n_rows: int) -> dict[str, np.ndarray]:
    """A compressed-sparse-row matrix as plain numpy arrays (indptr, columns, values)."""
    order = np.lexsort((columns, rows))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
    return {"indptr": indptr, "columns": columns[order], "values": values[order]}


# --- classification -------------------------------------------------------------------------------
def _design(preprocessor: Preprocessor, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """Standardised numerics, one-hot categoricals (the ONE_HOT_VALUES most frequent values; rarer ones,
    OOV and nulls share one column), and an intercept: the features of the linear baselines."""
    n = len(batch["target"])
    parts = [np.ones((n, 1))]
    if "numeric" in batch:
        parts.append(batch["numeric"].numpy().astype(np.float64))
    if "categorical" in batch:
        codes = batch["categorical"].numpy()
        for i, size in enumerate(preprocessor.shapes()["categorical_sizes"]):
            # vocabularies run most frequent first; column 0 is "none of the kept values"
            kept = np.clip(codes[:, i] - RESERVED + 1, 0, None)
            kept = np.where(kept > ONE_HOT_VALUES, 0, kept)
            width = min(size - RESERVED, ONE_HOT_VALUES) + 1
            one_hot = np.zeros((n, width))
            one_hot[np.arange(n), kept] = 1.0
            parts.append(one_hot[:, 1:])
    return np.concatenate(parts, axis=1)


class Majority(Baseline):
    """The target's prior as every row's prediction (the task says what: the base rate, class frequencies)."""

    name = "majority"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        self.prior = self.task.prior(batch["target"].numpy(), self.preprocessor.shapes())  # type: ignore[union-attr]

    def _outputs(self, batch: dict[str, torch.Tensor], table: pa.Table) -> RowOutputs:
        target = batch["target"].numpy()
        return self.task.row_outputs(self.task.constant(self.prior, len(target)), target)  # type: ignore[no-any-return]


class Logistic(Baseline):
    """Minimises mean log-loss + ||w||^2 / (2 n) (scikit-learn's C = 1; the intercept is not penalised) with L-BFGS
    in float64, which converges in tens of iterations on standardised features; a hundred thousand rows take
    well under a second."""

    name = "logistic"
    max_iter = 100

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        x = torch.from_numpy(_design(self.preprocessor, batch))  # type: ignore[arg-type]
        target = batch["target"]
        keep = torch.from_numpy(self.task.scored(target.numpy()))
        x, target = x[keep], target[keep]
        if target.is_floating_point():
            target = target.double()  # the logits are float64
        outputs = self.task.n_outputs(self.preprocessor.shapes())  # type: ignore[union-attr]
        weights = torch.zeros(x.shape[1], outputs, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [weights], lr=1, max_iter=self.max_iter, tolerance_grad=1e-6, line_search_fn="strong_wolfe"
        )
        penalty = 0.5 / max(len(x), 1)

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = self.task.loss(x @ weights, target) + penalty * (weights[1:] ** 2).sum()
            loss.backward()
            return loss  # type: ignore[no-any-return]

        optimizer.step(closure)
        self.weights = weights.detach()

    def _outputs(self, batch: dict[str, torch.Tensor], table: pa.Table) -> RowOutputs:
        logits = torch.from_numpy(_design(self.preprocessor, batch)) @ self.weights  # type: ignore[arg-type]
        return self.task.row_outputs(self.task.activate(logits).numpy(), batch["target"].numpy())  # type: ignore[no-any-return]


# --- regression -----------------------------------------------------------------------------------
class Mean(Baseline):
    name = "mean"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        self.mean = float(np.nanmean(self.preprocessor.target_values(_target_column(self, table))))  # type: ignore[union-attr]

    def _outputs(self, batch: dict[str, torch.Tensor], table: pa.Table) -> RowOutputs:
        y = self.preprocessor.target_values(_target_column(self, table))  # type: ignore[union-attr]
        return RowOutputs(self.task.kind, y, np.full(len(y), self.mean))


class Linear(Baseline):
    name = "linear"

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        y = np.nan_to_num(self.preprocessor.target_values(_target_column(self, table)))  # type: ignore[union-attr]
        self.coefficients, *_ = np.linalg.lstsq(_design(self.preprocessor, batch), y, rcond=None)  # type: ignore[arg-type]

    def _outputs(self, batch: dict[str, torch.Tensor], table: pa.Table) -> RowOutputs:
        y = self.preprocessor.target_values(_target_column(self, table))  # type: ignore[union-attr]
        return RowOutputs(self.task.kind, y, _design(self.preprocessor, batch) @ self.coefficients)  # type: ignore[arg-type]


def _target_column(baseline: Baseline, table: pa.Table) -> pa.Array:
    return table[baseline.preprocessor.target.name].combine_chunks()  # type: ignore[union-attr]


# --- gradient-boosted trees (scikit-learn, optional) -------------------------------------------------
class GradientBoosting(Baseline):
    name = "gbdt"
    MAX_CATEGORIES = 255  # HistGradientBoosting's limit; vocabularies run most frequent first, rarer ones merge

    def _features(self, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, list[bool]]:
        parts, categorical = [], []
        if "numeric" in batch:
            parts.append(batch["numeric"].numpy().astype(np.float64))
            categorical += [False] * parts[-1].shape[1]
        if "categorical" in batch:
            parts.append(np.minimum(batch["categorical"].numpy(), self.MAX_CATEGORIES - 1).astype(np.float64))
            categorical += [True] * parts[-1].shape[1]
        x = np.concatenate(parts, axis=1) if parts else np.zeros((len(batch["target"]), 1))
        return x, categorical or [False]

    def _fit(self, batch: dict[str, torch.Tensor], table: pa.Table) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        x, categorical = self._features(batch)
        seed = int(self.plan.train.seed)
        if not self.task.classifies:
            y = np.nan_to_num(self.preprocessor.target_values(_target_column(self, table)))  # type: ignore[union-attr]
            self.model = HistGradientBoostingRegressor(categorical_features=categorical, random_state=seed).fit(x, y)
            return
        target = batch["target"].numpy()
        keep = self.task.scored(target)
        model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed)
        self.model = model.fit(x[keep], target[keep].astype(np.int64))

    def _outputs(self, batch: dict[str, torch.Tensor], table: pa.Table) -> RowOutputs:
        x, _ = self._features(batch)
        if not self.task.classifies:
            y = self.preprocessor.target_values(_target_column(self, table))  # type: ignore[union-attr]
            return RowOutputs(self.task.kind, y, self.model.predict(x))
        seen = self.model.classes_.astype(np.int64)
        # probabilities over every class the task knows; a class absent from training keeps probability 0
        full = np.zeros((len(x), self.task.class_count(self.preprocessor.shapes())))  # type: ignore[union-attr]
        full[:, seen] = self.model.predict_proba(x)
        return self.task.row_outputs(self.task.class_scores(full), batch["target"].numpy())  # type: ignore[no-any-return]


def available(name: str) -> bool:
    """Whether the baseline's optional package (gbdt: scikit-learn) is installed."""
    package = BASELINES.entry(name).config.optional_package  # type: ignore[attr-defined]
    return package is None or importlib.util.find_spec(package) is not None


def fit_baseline(name: str, train: pa.Table, plan: Plan) -> Baseline:
    """Fit the named baseline (as `evaluate.baseline` names it, registered in `evaluate.BASELINES`) on train."""
    try:
        entry = BASELINES.entry(name)
    except KeyError:
        raise RscaleError(f"unknown baseline {name!r}", fix=f"use one of {', '.join(BASELINES.names())}") from None
    if not available(name):
        raise RscaleError(
            f"baseline `{name}` needs the Python package `{entry.config.optional_package}`, which is not installed",  # type: ignore[attr-defined]
            fix="pip install scikit-learn (a dependency of rscale; this environment lacks it), or leave it out of evaluate.baseline",
        )
    cls = entry.load()
    return cls(baseline_config(name)).fit(train, plan)  # type: ignore[no-any-return]
