"""Every model trains on tiny synthetic data in seconds and improves; resume, GPU errors and 2-process DDP."""

import json
import os

import pytest
from conftest import conversion_table, plan_for, recs_table

from rscale.errors import RscaleError
from rscale.models.package import ModelPackage
from rscale.models.training import train


def _improves(result, metric, higher=True):
    first, best = result.history[0][metric], [h[metric] for h in result.history]
    return (max(best) > first) if higher else (min(best) < first)


@pytest.mark.parametrize("encoder", ["gru", "sasrec", "mean"])
def test_session_rec_learns_the_next_item(encoder, tmp_path):
    plan = plan_for("recs", ["train.max_epochs=5", "model.dim=16", "train.batch_size=128", f"model.encoder={encoder}", "train.lr=0.01",
                             "model.transitions=false",  # the encoder itself must learn: no counted transitions
                             "train.early_stopping=null"])
    result = train(plan, recs_table(1500, seed=1), recs_table(300, seed=2), tmp_path, progress=False)
    assert result.epochs_run == 5 and result.train_rows == 1500
    assert {"train_loss", "val_loss", "val_hit_rate_at_10", "val_mrr_at_10"} <= set(result.history[-1])
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    # 40 items, so chance is 0.25; a mean over the session blurs the last item, which decides the next
    assert result.history[-1]["val_hit_rate_at_10"] > (0.35 if encoder == "mean" else 0.7)
    assert _improves(result, "val_hit_rate_at_10")
    assert result.samples_per_second > 0
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    package = ModelPackage.load(result.package_dir)
    top = package.predict([{"items": ["item3", "item4"]}])[0]["items"]
    assert "item5" in top[: 10 if encoder == "mean" else 3]


def test_tabular_binary_learns(tmp_path, conversion_plan):
    result = train(conversion_plan, conversion_table(1200, 1), conversion_table(300, 2), tmp_path, progress=False)
    assert "val_auc" in result.history[-1] and "val_accuracy" in result.history[-1]
    assert max(h["val_auc"] for h in result.history) > 0.75
    assert result.best_epoch is not None


def test_tabular_multiclass_and_regression_learn(tmp_path):
    multiclass = plan_for("conversion", [
        "features.target.name=segment", "features.target.type=categorical", "train.max_epochs=6",
        "evaluate.metrics=[accuracy,log_loss]", "evaluate.baseline=logistic", "evaluate.gate.metric=accuracy"])
    result = train(multiclass, conversion_table(1200, 1), conversion_table(300, 2), tmp_path / "m", progress=False)
    assert max(h["val_accuracy"] for h in result.history) > 0.8
    out = ModelPackage.load(result.package_dir).predict([{
        "n_views": 2, "n_carts": 4, "n_categories": 1, "duration_s": 10, "avg_price": 5, "device": "mobile"}])[0]
    assert out["label"] == "buyer" and abs(sum(out["probabilities"].values()) - 1) < 1e-5
    regression = plan_for("conversion", [
        "features.target.name=spend", "features.target.type=numeric", "train.max_epochs=6",
        "evaluate.metrics=[rmse,r2]", "evaluate.baseline=linear", "evaluate.gate.metric=rmse"])
    result = train(regression, conversion_table(1200, 1), conversion_table(300, 2), tmp_path / "r", progress=False)
    assert _improves(result, "val_rmse", higher=False) and result.history[-1]["val_r2"] > 0.5
    value = ModelPackage.load(result.package_dir).predict([{
        "n_views": 4, "n_carts": 2, "n_categories": 1, "duration_s": 10, "avg_price": 5, "device": "mobile"}])[0]["value"]
    assert 5 < value < 11  # truth about 3*2 + 0.5*4 = 8


def test_text_model_learns(tmp_path):
    plan = plan_for("conversion", ["model={type:text,dim:16,buckets:1024}", "features.inputs=[{name:review,type:text}]",
                                   "train.max_epochs=6", "train.lr=0.05"])
    result = train(plan, conversion_table(600, 1), conversion_table(200, 2), tmp_path, progress=False)
    assert max(h["val_auc"] for h in result.history) > 0.95
    package = ModelPackage.load(result.package_dir)
    good, bad = package.predict([{"review": "love it, great"}, {"review": "broken and slow"}])
    assert good["probability"] > bad["probability"]


def test_custom_module_trains_and_reloads(tmp_path):
    plan = plan_for("conversion", ["model={type:custom,module:'models_custom_example:TinyClassifier',params:{hidden:8}}",
                                   "train.max_epochs=4", "train.batch_size=32"])
    result = train(plan, conversion_table(800, 1), conversion_table(200, 2), tmp_path, progress=False)
    assert max(h["val_auc"] for h in result.history) > 0.7
    package = ModelPackage.load(result.package_dir)
    assert type(package.module).__name__ == "TinyClassifier"
    out = package.predict([{"n_views": 1, "n_carts": 3, "n_categories": 1, "duration_s": 1, "avg_price": 9,
                            "device": "desktop"}])[0]
    assert 0 <= out["probability"] <= 1 and out["label"] in (0, 1)


def test_custom_module_that_cannot_be_imported_says_so(tmp_path):
    plan = plan_for("conversion", ["model={type:custom,module:'nowhere_module:Nothing'}", "train.max_epochs=1"])
    with pytest.raises(RscaleError, match="cannot be imported") as info:
        train(plan, conversion_table(50), conversion_table(20, 1), tmp_path, progress=False)
    assert "PYTHONPATH" in info.value.fix


def test_rerun_resumes_from_the_last_checkpoint(tmp_path, recs_plan):
    data, validation = recs_table(400, 1), recs_table(100, 2)
    first = train(plan_for("recs", ["train.max_epochs=1", "model.dim=16"]), data, validation, tmp_path, progress=False)
    assert first.epochs_run == 1 and first.resumed_from is None
    second = train(plan_for("recs", ["train.max_epochs=3", "model.dim=16"]), data, validation, tmp_path, progress=False)
    assert second.resumed_from == first.checkpoint
    assert [h["epoch"] for h in second.history] == [0, 1, 2]  # epoch 0 is not trained again
    assert second.history[0] == first.history[0]


def test_gpus_without_cuda_is_a_clear_error(tmp_path, recs_plan):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    plan = recs_plan.model_copy(update={"train": recs_plan.train.model_copy(update={"gpus": 1}),
                                        "hardware": recs_plan.hardware.model_copy(update={"accelerator": "gpu"})})
    with pytest.raises(RscaleError, match="train.gpus is 1, but no CUDA GPU is available") as info:
        train(plan, recs_table(50), recs_table(20, 1), tmp_path, progress=False)
    assert "train.gpus=0" in info.value.fix


def test_ddp_runs_in_a_child_with_two_processes(tmp_path, monkeypatch, recs_plan):
    monkeypatch.setenv("RS_DDP_ACCELERATOR", "cpu")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    hardware = recs_plan.hardware.model_copy(update={"accelerator": "gpu", "devices": 2, "strategy": "ddp",
                                                     "launcher": "subprocess"})
    plan = recs_plan.model_copy(update={"hardware": hardware,
                                        "train": recs_plan.train.model_copy(update={"max_epochs": 2, "gpus": 2})})
    pid = os.getpid()
    result = train(plan, recs_table(600, 1), recs_table(100, 2), tmp_path, progress=False)
    assert os.getpid() == pid
    assert result.world_size == 2
    assert [h["epoch"] for h in result.history] == [0, 1]  # trained once, not once per rank
    assert json.loads((tmp_path / "history.json").read_text()) == result.history
    packages = [p.parent for p in tmp_path.rglob("manifest.json")]
    assert packages == [tmp_path / "package"]
    assert ModelPackage.load(result.package_dir).predict([{"items": ["item1"]}])[0]["items"]


def test_settings_left_out_are_derived_from_the_row_count():
    from rscale.compiler.spec.train import EarlyStopping, TrainSpec

    small, large = TrainSpec().settings(455, "auc"), TrainSpec().settings(200_000, "hit_rate@10")
    assert (small.batch_size, small.max_epochs, small.patience) == (32, 267, 20)  # 15 steps an epoch: many epochs
    assert (large.batch_size, large.max_epochs, large.patience) == (512, 11, 3)
    assert (small.monitor, small.mode) == ("val_auc", "max") and large.monitor == "val_hit_rate_at_10"
    assert TrainSpec().settings(1000, "rmse").mode == "min" and TrainSpec().settings(1000, None).monitor == "val_loss"
    spec = TrainSpec(max_epochs=7, batch_size=100, early_stopping=EarlyStopping(monitor="val_loss", patience=2))
    chosen = spec.settings(455, "auc")
    assert (chosen.max_epochs, chosen.batch_size, chosen.monitor, chosen.mode, chosen.patience) == (
        7, 100, "val_loss", "min", 2)
    assert chosen.derived == []



def test_fit_settings_come_from_the_plan_once_for_both_fit_paths(tmp_path):
    """The one record the Fabric loop and the Trainer read: every value is the plan's or derived from it."""
    from rscale.models.training import fit_settings

    plan = plan_for("conversion", ["train.max_epochs=7", "train.batch_size=64", "train.seed=5",
                                   "train.early_stopping={monitor:null,patience:2}"])
    settings = fit_settings(plan, 1000, tmp_path, validates=True, resume=None)
    assert (settings.accelerator, settings.devices, settings.strategy, settings.precision) == (
        plan.hardware.accelerator, plan.hardware.devices, plan.hardware.strategy, plan.hardware.precision)
    assert (settings.seed, settings.max_epochs, settings.batch_size, settings.patience) == (5, 7, 64, 2)
    assert settings.val_batch_size == 1024 and settings.train == plan.train.settings(1000, "auc")
    assert (settings.tie_break_of, settings.monitor, settings.mode) == ("val_auc", "val_auc_tie_break", "max")
    assert settings.checkpoints == tmp_path / "checkpoints" and settings.history_path == tmp_path / "history.json"
    # no validation rows: nothing to monitor, so no tie-break and no early stopping; a DDP rank > 0 writes no history
    alone = fit_settings(plan, 1000, tmp_path, validates=False, resume=tmp_path / "last.ckpt", writes_history=False)
    assert (alone.tie_break_of, alone.monitor, alone.patience, alone.history_path) == (None, "val_auc", None, None)
    assert alone.resume == tmp_path / "last.ckpt"
    assert fit_settings(plan, 1000, tmp_path, validates=True, resume=None, devices=2, strategy="ddp").devices == 2
    with pytest.raises(AttributeError):  # frozen: built once, read by both paths, changed by neither
        settings.max_epochs = 1  # type: ignore[misc]

def test_best_epoch_by_the_gate_metric_and_a_warning_when_it_is_the_last(tmp_path):
    plan = plan_for("conversion", ["train.max_epochs=2", "train.early_stopping={monitor:null,patience:null}",
                                   "train.lr=0.0001"])
    result = train(plan, conversion_table(600, 1), conversion_table(200, 2), tmp_path, progress=False)
    assert result.settings["monitor"] == "val_auc" and result.settings["patience"] == 3
    assert all("val_auc_tie_break" in h for h in result.history)
    best = max(result.history, key=lambda h: h["val_auc_tie_break"])["epoch"]
    assert result.best_epoch == best == result.history[-1]["epoch"]  # a tiny lr: still improving at the end
    assert any("train.max_epochs=4" in w for w in result.warnings)
