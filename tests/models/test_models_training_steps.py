"""rscale's training optimises exactly like a plain PyTorch loop over the same batches, on both of its paths:
the Fabric loop of the built-in models and the Lightning Trainer of a user's own module; and a user's
module is trained as its class is, never changed."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import conversion_table, plan_for
from models_custom_example import TinyClassifier

from rscale.models.package import ModelPackage, build_module, model_config_for
from rscale.models.preprocess import Preprocessor
from rscale.models.training import TensorBatches, train

CUSTOM = "model={type:custom,module:'models_custom_example:TinyClassifier',params:{hidden:8}}"


def _plain_loop(plan, data):  # type: ignore[no-untyped-def]
    """The loop a person writes: same init seed, seeded shuffles per epoch, one AdamW step per batch."""
    torch.manual_seed(plan.train.seed)
    preprocessor = Preprocessor.fit(plan, data)
    config = model_config_for(plan, preprocessor)
    model = build_module(config)
    batches = TensorBatches(preprocessor.transform(data))
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.train.lr, weight_decay=plan.train.weight_decay)
    epoch_losses, steps = [], 0
    for epoch in range(plan.train.max_epochs):
        order = torch.randperm(data.num_rows, generator=torch.Generator().manual_seed(plan.train.seed + epoch))
        total = 0.0
        for index in order.split(plan.train.batch_size):
            batch = batches[index]
            loss = F.binary_cross_entropy_with_logits(model(batch), batch["target"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            steps += 1
        epoch_losses.append(total / data.num_rows)
    return model, epoch_losses, steps


@pytest.mark.parametrize("model", [["model.dropout=0"], [CUSTOM]], ids=["built-in-fabric-loop", "custom-trainer"])
def test_training_matches_a_plain_loop(model, tmp_path):
    plan = plan_for("conversion", [*model, "train.max_epochs=3", "train.batch_size=64", "train.early_stopping=null"])
    data = conversion_table(1000, 1)
    result = train(plan, data, data.slice(0, 0), tmp_path, progress=False)  # no validation: last epoch is kept
    model, epoch_losses, steps = _plain_loop(plan, data)

    trained = ModelPackage.load(result.package_dir).module.state_dict()
    assert trained.keys() == model.state_dict().keys()
    for name, weights in model.state_dict().items():
        assert torch.allclose(trained[name], weights, atol=1e-6), name
    assert [h["train_loss"] for h in result.history] == pytest.approx(epoch_losses, rel=1e-5)
    # the checkpoint counts every optimiser step, as Lightning's does (loggers' steps follow it)
    assert torch.load(result.checkpoint, weights_only=False)["global_step"] == steps == 3 * 16


def test_a_users_module_is_trained_as_its_class_is(tmp_path):
    plan = plan_for("conversion", [CUSTOM, "train.max_epochs=2", "train.batch_size=64"])
    result = train(plan, conversion_table(400, 1), conversion_table(100, 2), tmp_path, progress=False)
    assert type(ModelPackage.load(result.package_dir).module) is TinyClassifier  # not a subclass rscale made
    assert {"train_loss", "val_loss", "val_auc"} <= set(result.history[-1])  # rscale's steps, around it
    assert "training_step" not in vars(TinyClassifier) and "configure_optimizers" not in vars(TinyClassifier)


class OwnSteps(TinyClassifier):
    """A whole LightningModule of its own: SGD, its own loss name, no validation_step."""

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        loss = F.binary_cross_entropy_with_logits(self(batch), batch["target"])
        self.log("own_loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_module_with_its_own_steps_trains_as_written(tmp_path):
    plan = plan_for("conversion", ["model={type:custom,module:'test_models_training_steps:OwnSteps',params:{hidden:8}}",
                                   "train.max_epochs=2", "train.batch_size=64"])
    result = train(plan, conversion_table(400, 1), conversion_table(100, 2), tmp_path, progress=False)
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert "own_loss" in result.history[-1] and "val_loss" not in result.history[-1]  # nothing added to it
    assert type(ModelPackage.load(result.package_dir).module) is OwnSteps


def test_early_stopping_and_the_best_epoch_in_the_loop(tmp_path):
    # a large lr on a tiny table overfits quickly: val_loss stops improving, patience 1 ends the run early
    plan = plan_for("conversion", ["train.max_epochs=30", "train.batch_size=16", "train.lr=0.05",
                                   "train.early_stopping={monitor:val_loss,patience:1}"])
    result = train(plan, conversion_table(300, 1), conversion_table(100, 2), tmp_path, progress=False)
    losses = [h["val_loss"] for h in result.history]
    best = losses.index(min(losses))
    assert result.epochs_run == best + 2 < 30  # one epoch without a better val_loss, then it stopped
    assert result.best_epoch == best
    kept = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=False)
    assert kept["epoch"] == best
    packaged = ModelPackage.load(result.package_dir).module.state_dict()
    assert all(torch.equal(packaged[k], v) for k, v in kept["state_dict"].items())  # the best epoch is shipped


def test_no_private_lightning_api_in_the_package():
    repo = Path(__file__).resolve().parents[2]  # not `from conftest import`: another folder's conftest may be that module
    for path in (repo / "src").rglob("*.py"):
        source = path.read_text()
        assert "_on_before_step" not in source and "optimizer.optimizer.step" not in source, path
