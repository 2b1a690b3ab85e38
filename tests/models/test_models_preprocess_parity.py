"""The piecewise, in-place, threaded `transform` gives exactly the tensors the earlier whole-column one gave.

`EarlierPreprocessor` keeps the earlier code (full-size float64 columns, np.where for nulls, np.stack, then a
float32 copy); both encode the same fitted state. Slices and row ranges are made tiny so that small tables
cross every piece and thread boundary.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch
from conftest import conversion_table, plan_for, recs_table

from rscale.models import table_encoder
from rscale.models.fitted import NumericStats
from rscale.models.preprocess import IGNORE_CLASS, OOV, RESERVED, Preprocessor, _combine


class EarlierPreprocessor(Preprocessor):
    """transform as it was before it was made piecewise (commit 8dc2c38)."""

    def transform(self, table, with_target=True):  # type: ignore[no-untyped-def]
        batch = {}
        if self.numeric:
            columns = []
            for f in self.numeric:
                values = pc.cast(_combine(table[f.name]), pa.float64()).to_numpy(zero_copy_only=False)
                values = np.where(np.isfinite(values), values, f.mean)
                columns.append((values - f.mean) / f.std)
            batch["numeric"] = torch.from_numpy(np.stack(columns, axis=1).astype(np.float32))
        if self.categorical:
            codes = [self._table_codes(_combine(table[c.name]), c.vocab) for c in self.categorical]
            batch["categorical"] = torch.from_numpy(np.stack(codes, axis=1))
        if self.sequence:
            matrix, lengths = self.encoder._sequence_matrix(_combine(table[self.sequence.name]))
            batch["sequence"], batch["lengths"] = torch.from_numpy(matrix), torch.from_numpy(lengths)
        if with_target:
            batch["target"] = self.transform_target(_combine(table[self.target.name]))
        return batch

    def transform_target(self, column):  # type: ignore[no-untyped-def]
        kind = self.target.kind
        if kind == "ranking":
            return torch.from_numpy(self._table_codes(column, self.target.vocab))
        if kind == "multiclass":
            classes = pa.array(self.target.classes, pa.string())
            found = pc.fill_null(pc.index_in(column.cast(pa.string()), value_set=classes), IGNORE_CLASS)
            return torch.from_numpy(found.to_numpy(zero_copy_only=False).astype(np.int64))
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        if kind == "regression":
            values = (values - self.target.mean) / self.target.std
        return torch.from_numpy(np.nan_to_num(values).astype(np.float32))

    def _table_codes(self, column, vocab):  # type: ignore[no-untyped-def]
        found = pc.index_in(column.cast(pa.string()), value_set=self.encoder._arrow_vocab[vocab])
        codes = pc.fill_null(found, OOV - RESERVED).to_numpy(zero_copy_only=False).astype(np.int64)
        return codes + RESERVED


@pytest.fixture(autouse=True)
def tiny_pieces(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(table_encoder, "SLICE_ROWS", 7)
    monkeypatch.setattr(table_encoder, "PARALLEL_ROWS", 50)


def _messy(rows: int, seed: int) -> pa.Table:
    """Nulls, NaN and inf, ints, bools, a dictionary-encoded column, unequal chunks from column to column."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(50, 20, rows)
    amount[::17], amount[5::23], amount[7::29] = np.nan, np.inf, -np.inf
    amount_mask = np.zeros(rows, bool)
    amount_mask[3::11] = True
    count = pa.array(rng.integers(0, 9, rows), mask=np.arange(rows) % 13 == 0)
    flag = pa.array(rng.random(rows) < 0.4, mask=np.arange(rows) % 19 == 0)
    device = rng.choice(np.array(["mobile", "desktop", "tablet", f"seen-only-in-{seed}"], dtype=object), rows)
    device[::31] = None
    shop = pa.array(rng.choice(["north", "south", "east", f"west-{seed}"], rows), mask=np.arange(rows) % 37 == 0)
    purchased = pa.array(rng.integers(0, 2, rows), mask=np.arange(rows) % 41 == 0)

    def chunked(array: pa.Array, size: int) -> pa.ChunkedArray:
        return pa.chunked_array([array.slice(i, size) for i in range(0, len(array), size)], type=array.type)

    return pa.table({
        "amount": chunked(pa.array(amount, mask=amount_mask), 64),
        "count": chunked(count, 100),
        "flag": flag,
        "device": chunked(pa.array(device, pa.string()), 33),
        "shop": chunked(shop.dictionary_encode(), 250),
        "purchased": chunked(purchased, 77),
        "spend": chunked(pa.array(rng.normal(10, 3, rows), mask=np.arange(rows) % 43 == 0), 90),
        "segment": pa.array(rng.choice(["a", "b", "c"], rows), mask=np.arange(rows) % 47 == 0),
    })


MESSY_INPUTS = (
    "features.inputs=[{name:amount,type:numeric},{name:count,type:numeric},{name:flag,type:binary},"
    "{name:device,type:categorical},{name:shop,type:categorical}]"
)


def _assert_same(new: dict[str, torch.Tensor], earlier: dict[str, torch.Tensor]) -> None:
    assert new.keys() == earlier.keys()
    for name in new:
        assert new[name].dtype == earlier[name].dtype, name
        assert new[name].shape == earlier[name].shape, name
        assert torch.equal(new[name], earlier[name]), name


@pytest.mark.parametrize(
    "target",
    [
        ["features.target.name=purchased", "features.target.type=binary"],
        ["features.target.name=spend", "features.target.type=numeric", "evaluate.metrics=[rmse]",
         "evaluate.baseline=linear", "evaluate.gate.metric=rmse"],
        ["features.target.name=segment", "features.target.type=categorical", "evaluate.metrics=[accuracy]",
         "evaluate.baseline=logistic", "evaluate.gate.metric=accuracy"],
    ],
    ids=["binary", "regression", "multiclass"],
)
def test_tabular_tensors_equal_the_earlier_transform(target):
    plan = plan_for("conversion", [MESSY_INPUTS, *target])
    train, other = _messy(1000, 1), _messy(300, 2)
    fitted = Preprocessor.fit(plan, train)
    earlier = EarlierPreprocessor.from_dict(fitted.to_dict())
    for table in (train, other, train.slice(0, 0), train.slice(990)):
        _assert_same(fitted.transform(table), earlier.transform(table))
    column = other[fitted.target.name]
    assert torch.equal(fitted.transform_target(column), earlier.transform_target(_combine(column)))
    batch = fitted.transform(other)
    assert batch["numeric"].isfinite().all()  # NaN, inf and nulls became the mean, i.e. 0
    assert (batch["categorical"][:, 0][np.asarray(pc.is_null(other["device"]))] == OOV).all()


def test_sequence_and_ranking_tensors_equal_the_earlier_transform():
    plan = plan_for("recs", ["model.dim=16"])
    train = recs_table(500, seed=1)
    items = train["items"].combine_chunks()
    with_nulls = pa.ListArray.from_arrays(items.offsets, pc.if_else(pc.equal(items.values, "item3"), None, items.values),
                                          mask=pa.array(np.arange(len(items)) % 17 == 0))
    train = train.set_column(1, "items", with_nulls)
    fitted = Preprocessor.fit(plan, train)
    earlier = EarlierPreprocessor.from_dict(fitted.to_dict())
    for table in (train, recs_table(200, seed=2, items=60)):
        _assert_same(fitted.transform(table), earlier.transform(table))


def test_fitted_statistics_equal_numpys_over_the_finite_values():
    plan = plan_for("conversion", [MESSY_INPUTS])
    train = _messy(1000, 1)
    fitted = Preprocessor.fit(plan, train)
    for feature in fitted.numeric[:2]:
        values = pc.cast(_combine(train[feature.name]), pa.float64()).to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        assert feature.mean == pytest.approx(finite.mean(), rel=1e-12)
        assert feature.std == pytest.approx(finite.std(), rel=1e-12)
    assert fitted.numeric[2] == NumericStats(name="flag", mean=0.0, std=1.0, binary=True)
    # vocabularies: most frequent first, ties alphabetical, nulls left out, counted across row ranges
    device = pc.drop_null(_combine(train["device"])).to_pylist()
    counts = {value: device.count(value) for value in set(device)}
    assert fitted.vocabularies["device"] == sorted(counts, key=lambda value: (-counts[value], value))
    shop = pc.drop_null(_combine(train["shop"]).cast(pa.string())).to_pylist()
    assert sorted(fitted.vocabularies["shop"]) == sorted(set(shop))


def test_conversion_tables_equal_the_earlier_transform():
    plan = plan_for("conversion", [])
    train = conversion_table(800, 1)
    fitted = Preprocessor.fit(plan, train)
    _assert_same(fitted.transform(train), EarlierPreprocessor.from_dict(fitted.to_dict()).transform(train))


@pytest.mark.parametrize("spec", ["conversion", "messy", "recs"])
def test_fit_transform_equals_fit_then_transform(spec):
    """The one-pass fit_transform gives the state and tensors of fit then transform: across chunk, piece and
    row-range boundaries, with nulls, values seen in one range only, a dictionary-typed column, an empty table."""
    if spec == "recs":
        plan, tables = plan_for("recs", ["model.dim=16"]), [recs_table(300, seed=1)]
    elif spec == "messy":
        plan = plan_for("conversion", [MESSY_INPUTS, "features.target.name=purchased", "features.target.type=binary"])
        tables = [_messy(1000, 1), _messy(1000, 1).slice(0, 0), _messy(120, 3)]
    else:
        plan, tables = plan_for("conversion", []), [conversion_table(800, 1)]
    for table in tables:
        fitted, batch = Preprocessor.fit_transform(plan, table)
        separately = Preprocessor.fit(plan, table)
        assert fitted.to_dict() == separately.to_dict()
        _assert_same(batch, separately.transform(table))
        assert fitted.transform(table, with_target=False).keys() == Preprocessor.fit_transform(plan, table, False)[1].keys()
