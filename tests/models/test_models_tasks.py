"""Task objects: one per target kind, registered in spec.tasks.TASKS, and what the rest of the model layer asks them."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pyarrow as pa
import pytest
import torch
from conftest import conversion_table, plan_for, recs_table

from rscale.compiler.spec.features import FeatureType
from rscale.compiler.spec.tasks import TASKS, metric_names, target_kind
from rscale.models.baselines import fit_baseline
from rscale.models.package import model_config_for
from rscale.models.preprocess import IGNORE_CLASS, Preprocessor
from rscale.models.tasks import Task, task_named


def test_every_registered_kind_has_its_task_object():
    assert TASKS.names() == ["binary", "multiclass", "ranking", "regression"]
    for kind in TASKS.names():
        task = task_named(kind)
        assert isinstance(task, Task) and task.kind == kind
        assert task_named(kind) is task  # one object per kind


def _rule_before_tasks(task: str, target_type: str) -> str:
    """The if-chain Preprocessor.fit had before target kinds registered (kept here as the reference)."""
    if task == "ranking":
        return "ranking"
    if task == "regression" or target_type == "numeric":
        return "regression"
    if target_type == "binary":
        return "binary"
    return "multiclass"


def test_the_registered_kinds_claim_targets_as_the_old_if_chain_did():
    for task, target_type in itertools.product(["ranking", "classification", "regression"], FeatureType.__args__):
        assert target_kind(task, target_type) == _rule_before_tasks(task, target_type), (task, target_type)


def test_a_tasks_metrics_come_from_its_kinds():
    assert metric_names("classification") == ["accuracy", "auc", "f1", "log_loss"]
    assert metric_names("ranking") == ["hit_rate@K", "mrr@K", "ndcg@K", "recall@K"]
    assert metric_names("regression") == ["rmse", "mae", "r2"]


TARGETS = {
    "binary": [],
    "multiclass": ["features.target.name=segment", "features.target.type=categorical", "evaluate.metrics=[accuracy]",
                   "evaluate.baseline=logistic", "evaluate.gate.metric=accuracy"],
    "regression": ["features.target.name=spend", "features.target.type=numeric", "evaluate.metrics=[rmse]",
                   "evaluate.baseline=linear", "evaluate.gate.metric=rmse"],
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, tuple[object, Preprocessor, pa.Table]]:
    table = conversion_table(120)
    out = {}
    for kind, overrides in TARGETS.items():
        plan = plan_for("conversion", overrides)
        out[kind] = (plan, Preprocessor.fit(plan, table), table)
    sessions = recs_table(80)
    recs = plan_for("recs")
    out["ranking"] = (recs, Preprocessor.fit(recs, sessions), sessions)
    return out


def test_the_preprocessor_keeps_one_task_and_the_model_config_no_second_copy(fitted):
    for kind, (plan, pre, table) in fitted.items():
        assert pre.task is task_named(kind) and pre.target.kind == kind
        config = model_config_for(plan, pre)
        assert "target_kind" not in config and config["shapes"]["target_kind"] == kind
        assert pre.transform(table)["target"].dtype == pre.task.target_dtype


def test_the_served_responses_are_the_tasks(fitted):
    """The serving codec answers with the task's responder: its dicts, its description, and JSON texts
    that say what the dicts say."""
    from rscale.serving.codec import RequestCodec

    generator = torch.Generator().manual_seed(0)
    for kind, (_, pre, _) in fitted.items():
        task, shapes = pre.task, pre.shapes()
        output = torch.randn(5, task.n_outputs(shapes), generator=generator)
        output = output.squeeze(1) if task.n_outputs(shapes) == 1 else output
        top_k = pre.state.top_k
        codec = RequestCodec(pre.to_dict())
        assert codec.task is task
        assert codec.respond(output) == task.respond(pre.target, pre.vocabularies, top_k)(output), kind
        assert codec.response_description() == task.describe_response(pre.target, top_k), kind
        assert [json.loads(text) for text in codec.respond_json(output)] == codec.respond(output), kind


def test_the_constant_baseline_is_what_the_task_says(fitted):
    binary_plan, pre, table = fitted["binary"]
    majority = fit_baseline("majority", table, binary_plan).outputs(table)
    rate = float(np.mean(table["purchased"].to_numpy()))
    assert majority.kind == "binary" and np.allclose(majority.values, rate)
    plan, pre, table = fitted["multiclass"]
    outputs = fit_baseline("majority", table, plan).outputs(table)
    counts = np.array([np.sum(table["segment"].to_numpy(zero_copy_only=False) == c) for c in pre.target.classes or ()])
    assert np.allclose(outputs.values, counts / counts.sum())


def test_a_class_unseen_in_training_is_neither_learned_nor_scored():
    task = task_named("multiclass")
    target = np.array([0, IGNORE_CLASS, 1])
    outputs = task.row_outputs(np.eye(3)[:, :2], target)
    assert outputs.target.tolist() == [0, 1] and len(outputs.values) == 2
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0], [0.0, 5.0]])
    both = task.loss(logits, torch.from_numpy(target))
    assert torch.isclose(both, task.loss(logits[[0, 2]], torch.tensor([0, 1])))
