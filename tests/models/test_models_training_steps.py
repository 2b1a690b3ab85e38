"""rscale's grouped training steps optimise exactly like a plain PyTorch loop over the same batches."""

import pytest
import torch
import torch.nn.functional as F
from conftest import conversion_table, plan_for

from rscale.models import task_module
from rscale.models.package import ModelPackage, build_module, model_config_for
from rscale.models.preprocess import Preprocessor
from rscale.models.training import TensorBatches, batches_per_step, train


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


@pytest.mark.parametrize("plain", [True, False], ids=["plain-backward", "lightning-backward"])
def test_grouped_steps_match_a_plain_loop(plain, tmp_path, monkeypatch):
    if not plain:  # the path taken under mixed precision, DDP or a user's backward hooks
        monkeypatch.setattr(task_module, "plain_steps", lambda module, optimizer: False)
    plan = plan_for("conversion", ["model.dropout=0", "train.max_epochs=3", "train.batch_size=64",
                                   "train.early_stopping=null"])
    data = conversion_table(1000, 1)
    result = train(plan, data, data.slice(0, 0), tmp_path, progress=False)  # no validation: last epoch is kept
    model, epoch_losses, steps = _plain_loop(plan, data)

    trained = ModelPackage.load(result.package_dir).module.state_dict()
    for name, weights in model.state_dict().items():
        assert torch.allclose(trained[name], weights, atol=1e-6), name
    assert [h["train_loss"] for h in result.history] == pytest.approx(epoch_losses, rel=1e-5)
    # Lightning counts every optimiser step (checkpoint saving and loggers rely on it), not every group
    assert torch.load(result.checkpoint, weights_only=False)["global_step"] == steps == 3 * 16


def test_batches_are_grouped_only_for_rscales_own_steps():
    plan = plan_for("conversion", [])
    config = model_config_for(plan, Preprocessor.fit(plan, conversion_table(100)))
    module = build_module(config)
    assert batches_per_step(module, 1_000_000, 256, world_size=1) == 64  # at most 16,384 rows a Lightning step
    assert batches_per_step(module, 60_000, 256, world_size=1) == 24  # and at least 10 steps an epoch (235 batches)
    assert batches_per_step(module, 100, 256, world_size=1) == 1
    assert batches_per_step(module, 150_000, 256, world_size=2) == 0  # DDP: one backward per forward

    class OwnStep(type(module)):  # type: ignore[misc]
        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            return super().training_step(batch, batch_idx)

    assert batches_per_step(OwnStep(config), 150_000, 256, world_size=1) == 0
