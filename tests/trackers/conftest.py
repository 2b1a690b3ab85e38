"""Fixtures for tracker tests: plans compiled from the repo's spec, and a real two-epoch Lightning fit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def compile_plan(project: Path) -> Callable[..., Any]:
    """`compile_plan("tracker.kind=none", ...)`: the conversion spec's plan with Hydra overrides, no data contract."""
    from rscale.compiler.compilation import compile_spec

    def compile_with(*overrides: str) -> Any:
        return compile_spec("specs/conversion.yaml", list(overrides), offline=True).plans[0]

    return compile_with


@pytest.fixture
def recorder() -> Any:
    """A Lightning logger beside the tracker's: what Lightning handed to loggers, to compare with what was stored."""
    from pytorch_lightning.loggers.logger import Logger

    class RecordingLogger(Logger):
        name = "recorder"
        version = "0"

        def __init__(self) -> None:
            super().__init__()
            self.metrics: list[tuple[int | None, dict[str, float]]] = []
            self.hparams: dict[str, Any] = {}

        def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
            self.metrics.append((step, {k: float(v) for k, v in metrics.items()}))

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            self.hparams.update(dict(params))

        def series(self, key: str) -> list[tuple[int | None, float]]:
            return [(step, values[key]) for step, values in self.metrics if key in values]

    return RecordingLogger()


@pytest.fixture
def fit_two_epochs(tmp_path: Path) -> Callable[..., Any]:
    """Run a real tiny Lightning fit (2 epochs, 4 batches each) with the given loggers and callbacks."""

    def fit(loggers: Sequence[Any], callbacks: Sequence[Any] = ()) -> tuple[Any, Any]:
        import pytorch_lightning as pl
        import torch
        from torch.nn import functional
        from torch.utils.data import DataLoader, TensorDataset

        class ToyRegression(pl.LightningModule):
            def __init__(self, lr: float = 0.1, hidden: int = 4) -> None:
                super().__init__()
                self.save_hyperparameters()
                self.net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

            def training_step(self, batch: Any, index: int) -> Any:
                x, y = batch
                loss = functional.mse_loss(self.net(x), y)
                self.log("train_loss", loss, on_step=False, on_epoch=True)
                return loss

            def validation_step(self, batch: Any, index: int) -> None:
                x, y = batch
                self.log("val_loss", functional.mse_loss(self.net(x), y), on_epoch=True)

            def configure_optimizers(self) -> Any:
                return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

        torch.manual_seed(0)
        x = torch.randn(64, 2)
        y = x.sum(dim=1, keepdim=True)
        data = DataLoader(TensorDataset(x, y), batch_size=16)
        module = ToyRegression()
        trainer = pl.Trainer(
            max_epochs=2,
            logger=list(loggers) if loggers else False,
            callbacks=list(callbacks),
            default_root_dir=tmp_path / "lightning",
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=1,
            accelerator="cpu",
        )
        trainer.fit(module, data, data)
        return trainer, module

    return fit
