"""Issue 12's small-table claim: with DEFAULT training settings, the tabular model on scikit-learn's breast
cancer data (569 rows, 30 numeric inputs; the spec's random split gives 455 train+validation / 114 test rows)
is within 0.01 holdout AUC and 0.02 accuracy of logistic regression. The spec (bench/quality.py) sets no
train block, so epochs, batch size, patience and the monitored metric are all derived from the data."""

import pytest

pytest.importorskip("sklearn")

from bench.quality import DATASETS, evaluate_dataset  # noqa: E402


def test_tabular_model_with_defaults_is_close_to_logistic_regression_on_breast_cancer(tmp_path):
    data = DATASETS["breast_cancer"](False)
    assert "train:" not in data.spec_text  # type: ignore[operator]
    rows = {row["who"]: row for row in evaluate_dataset(data, tmp_path)}
    model, logistic = rows["model (tabular)"], rows["logistic"]
    assert model["rows"] == {"train": 398, "validation": 57, "test": 114}
    assert set(model["training"]["derived"]) == {"batch_size", "max_epochs", "monitor", "patience"}
    assert model["training"]["monitor"] == "val_auc"
    assert model["metrics"]["auc"] >= logistic["metrics"]["auc"] - 0.01, (model["metrics"], logistic["metrics"])
    assert model["metrics"]["accuracy"] >= logistic["metrics"]["accuracy"] - 0.02, (model["metrics"], logistic["metrics"])
    assert {"majority", "logistic", "gbdt"} <= set(rows)
    assert model["gate"]["interval"] is not None and model["gate"]["against"] in {"logistic", "gbdt"}
