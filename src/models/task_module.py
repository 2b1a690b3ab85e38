"""What every rscale model shares: the loss and validation metrics (asked of its Task), and the optimiser.

A model subclasses `TaskModule` and defines `forward(batch) -> output` over the batch layout of
`rscale.models.preprocess` (output: item scores [B, n_items] for ranking, one logit [B] for binary,
logits [B, C] for multiclass, a standardised value [B] for regression). Everything a package needs
to rebuild it is the model_config dict (`model`, `task`, `shapes`, `optim`, `metrics`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from rscale.models import metrics as metric_functions
from rscale.models.tasks import Task, task_named


def task_of(module: Any) -> Task:
    """The module's Task, from the target kind its model_config's shapes carry."""
    return task_named(module.rscale_config["shapes"]["target_kind"])


def task_loss(module: Any, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return task_of(module).loss(output, target)


def task_summary(module: Any, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What validation keeps per batch to compute metrics at epoch end (small: ranks, not score matrices)."""
    return task_of(module).summarise(output, target, module.rscale_config["shapes"])


def task_metrics(module: Any, summaries: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Spec metrics (keys as the spec names them) from the validation summaries."""
    if not summaries:
        return {}
    task = task_of(module)
    values = torch.cat([s[0] for s in summaries]).cpu().numpy()
    target = torch.cat([s[1] for s in summaries]).cpu().numpy()
    return task.metrics(module.rscale_config["metrics"], task.row_outputs(values, target))


class TaskSteps:
    """rscale's training/validation steps and optimiser for the Lightning Trainer, as an explicit mixin.

    Built-in models (TaskModule) train in rscale's Fabric loop (rscale.models.loop), which calls
    `training_loss`, `configure_optimizers` and `on_train_tensors` directly. These Lightning steps serve where
    the Trainer runs: multi-GPU DDP, a user's module wrapped by rscale.models.custom.TaskTraining, and any
    LightningModule that opts in by deriving from this class. One batch per step, automatic optimisation.
    """

    rscale_config: dict[str, Any]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The batch's training loss; its row-weighted mean over the epoch is logged as train_loss."""
        if batch_idx == 0:
            self.__dict__.pop("_rscale_train_loss", None)
        loss = self.training_loss(batch)
        self._add_train_loss(loss, len(batch["target"]))
        if self.trainer.is_last_batch:  # type: ignore[attr-defined]
            self._log_train_loss()
        return loss

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss one training batch is optimised on: the task's loss of the model's output.

        A model may learn from more than its output predicts (a session model learns every next item of
        the session, not only the last): it overrides this, and validation still scores the output.
        """
        return task_loss(self, self(batch), batch["target"])  # type: ignore[operator]

    def _add_train_loss(self, loss: torch.Tensor, rows: int) -> None:
        # `self.log` per step costs more than a small model's whole step, so the epoch's losses are kept
        # (detached, no .item(): no device sync) and their row-weighted mean is logged once per epoch; in
        # __dict__, not as module attributes, which would pass through nn.Module's bookkeeping every step
        losses, rows_seen = self.__dict__.setdefault("_rscale_train_loss", ([], []))
        losses.append(loss.detach())
        rows_seen.append(rows)

    def _log_train_loss(self) -> None:
        losses, rows_seen = self.__dict__.pop("_rscale_train_loss", ([], []))
        if not losses:
            return
        weights = torch.tensor(rows_seen, dtype=torch.float32, device=losses[0].device)
        mean = (torch.stack(losses).float() * weights).sum() / weights.sum()
        # logged on the epoch's last batch, so the history, the trackers and checkpoint monitors read it
        # at epoch end exactly as when it was logged every step
        sync = self.trainer.world_size > 1  # type: ignore[attr-defined]
        self.log("train_loss", mean, on_step=False, on_epoch=True, batch_size=1, sync_dist=sync)  # type: ignore[attr-defined]

    def on_validation_epoch_start(self) -> None:
        self._rscale_val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        output = self(batch)  # type: ignore[operator]
        loss = task_loss(self, output, batch["target"])
        sync = self.trainer.world_size > 1  # type: ignore[attr-defined]
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(batch["target"]), sync_dist=sync)  # type: ignore[attr-defined]
        if not hasattr(self, "_rscale_val"):
            self._rscale_val = []
        self._rscale_val.append(task_summary(self, output, batch["target"]))

    def on_validation_epoch_end(self) -> None:
        results = task_metrics(self, getattr(self, "_rscale_val", []))
        sync = self.trainer.world_size > 1  # type: ignore[attr-defined]
        for metric, value in results.items():
            if np.isfinite(value):
                self.log(metric_functions.logged_name(metric), float(value), prog_bar=True, sync_dist=sync)  # type: ignore[attr-defined]
        self._rscale_val = []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optim = self.rscale_config["optim"]
        return torch.optim.AdamW(
            self.parameters(),  # type: ignore[attr-defined]
            lr=optim["lr"],
            weight_decay=optim["weight_decay"],  # type: ignore[attr-defined]
        )


class TaskModule(TaskSteps, pl.LightningModule):
    """Base of the built-in models. `build(model_config)` is how packages and training construct them."""

    def __init__(self, model_config: dict[str, Any]) -> None:
        super().__init__()
        self.rscale_config = model_config
        self.shapes = model_config["shapes"]
        self.n_outputs = task_of(self).n_outputs(self.shapes)

    @classmethod
    def build(cls, model_config: dict[str, Any]) -> TaskModule:
        return cls(model_config)

    def on_train_tensors(self, tensors: dict[str, torch.Tensor], fresh: bool) -> None:
        """Called once before training with the whole encoded training split (after a resume restored the
        weights; `fresh`: no checkpoint was restored), for a model that derives state from the data itself."""

    def on_train_start(self) -> None:
        """Under the Trainer (DDP): on_train_tensors with the tensors rscale's loader slices batches from."""
        tensors = getattr(getattr(self.trainer.train_dataloader, "dataset", None), "tensors", None)
        if tensors is not None:
            self.on_train_tensors(tensors, fresh=self.trainer.current_epoch == 0 and self.trainer.global_step == 0)
