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


def plain_steps(module: Any, optimizer: Any) -> bool:
    """Whether plain `loss.backward()` and `optimizer.step()` do all that Lightning's manual_backward and
    LightningOptimizer.step would do here, minus dispatching hooks nobody implements.

    True in full precision on one device when neither the module nor a callback implements a backward or
    before-optimizer-step hook: Lightning's calls then add only empty hook calls and its step count,
    which together cost about a fifth of a small MLP's step. Anything else (mixed precision's loss
    scaling, DDP, a user's hooks) takes Lightning's own path.
    """
    from pytorch_lightning.plugins.precision import Precision
    from pytorch_lightning.strategies import SingleDeviceStrategy

    trainer = module.trainer
    hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
    return (
        type(trainer.precision_plugin) is Precision
        and type(trainer.strategy) is SingleDeviceStrategy
        and all(hasattr(optimizer, name) for name in ("_on_before_step", "_on_after_step", "optimizer"))
        and all(getattr(type(module), name) is getattr(pl.LightningModule, name) for name in (*hooks, "backward"))
        and not any(
            getattr(type(callback), name) is not getattr(pl.Callback, name)
            for callback in trainer.callbacks
            for name in hooks
        )
    )


class TaskSteps:
    """Training/validation steps and the optimiser as plain methods, so a user's LightningModule can borrow them."""

    rscale_config: dict[str, Any]

    def training_step(
        self, batch: dict[str, torch.Tensor] | list[dict[str, torch.Tensor]], batch_idx: int
    ) -> torch.Tensor | None:
        """One batch (automatic optimisation), or a list of batches with one optimiser step each (manual).

        rscale's loader hands a list where it can (rscale.models.training.batches_per_step): Lightning's
        per-step machinery then runs once per list, not once per batch; the optimisation is the same.
        """
        if batch_idx == 0:
            self.__dict__.pop("_rscale_train_loss", None)
        loss: torch.Tensor | None = None
        if isinstance(batch, list):
            optimizer = self.optimizers()  # type: ignore[attr-defined]
            plain = self.__dict__.get("_rscale_plain_steps")
            if plain is None:
                plain = self.__dict__["_rscale_plain_steps"] = plain_steps(self, optimizer)
            for part in batch:
                part_loss = self.training_loss(part)
                optimizer.zero_grad()
                if plain:
                    # what manual_backward and optimizer.step() come down to here (see plain_steps), with
                    # Lightning's count of optimiser steps (trainer.global_step) kept by its own callbacks
                    part_loss.backward()
                    optimizer._on_before_step()
                    optimizer.optimizer.step()
                    optimizer._on_after_step()
                else:
                    self.manual_backward(part_loss)  # type: ignore[attr-defined]
                    optimizer.step()
                self._add_train_loss(part_loss, len(part["target"]))
        else:
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
