"""What every rscale model shares, by task: the loss, validation metrics, and the optimiser.

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
import torch.nn.functional as F

from rscale.models import metrics as metric_functions
from rscale.models.preprocess import IGNORE_CLASS, OOV, RESERVED

MISSED = 1 << 30  # the rank of a target the model cannot rank (unknown item)


def task_loss(module: Any, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    kind = module.rscale_config["shapes"]["target_kind"]
    if kind == "ranking":
        return F.cross_entropy(output, target, ignore_index=OOV)
    if kind == "multiclass":
        return F.cross_entropy(output, target, ignore_index=IGNORE_CLASS)
    if kind == "binary":
        return F.binary_cross_entropy_with_logits(output.reshape(-1), target)
    return F.mse_loss(output.reshape(-1), target)


def task_summary(module: Any, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What validation keeps per batch to compute metrics at epoch end (small: ranks, not score matrices)."""
    shapes = module.rscale_config["shapes"]
    kind = shapes["target_kind"]
    output = output.detach().float()
    if kind == "ranking":
        return ranks_of_targets(output, target), target
    if kind == "multiclass":
        return torch.softmax(output, dim=-1), target
    if kind == "binary":
        return torch.sigmoid(output.reshape(-1)), target
    scale, shift = shapes["target_std"], shapes["target_mean"]
    return output.reshape(-1) * scale + shift, target * scale + shift


def ranks_of_targets(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0-based rank of each row's target among real items (padding and OOV never ranked); MISSED if unknown."""
    scores = scores.clone()
    scores[:, :RESERVED] = float("-inf")
    target_scores = scores.gather(1, target.clamp(min=0).reshape(-1, 1))
    ranks = (scores > target_scores).sum(dim=1)
    return torch.where(target < RESERVED, torch.full_like(ranks, MISSED), ranks)


def task_metrics(module: Any, summaries: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Spec metrics (keys as the spec names them) from the validation summaries."""
    if not summaries:
        return {}
    kind = module.rscale_config["shapes"]["target_kind"]
    names = module.rscale_config["metrics"]
    values = torch.cat([s[0] for s in summaries]).cpu().numpy()
    target = torch.cat([s[1] for s in summaries]).cpu().numpy()
    if kind == "ranking":
        return metric_functions.ranking_metrics(names, values)
    if kind == "multiclass":
        keep = target != IGNORE_CLASS
        return metric_functions.classification_metrics(names, target[keep], values[keep])
    if kind == "binary":
        return metric_functions.classification_metrics(names, target, values)
    return metric_functions.regression_metrics(names, target, values)


class TaskSteps:
    """Training/validation steps and the optimiser as plain methods, so a user's LightningModule can borrow them."""

    rscale_config: dict[str, Any]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = task_loss(self, self(batch), batch["target"])  # type: ignore[operator]
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["target"]))  # type: ignore[attr-defined]
        return loss

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
        kind = self.shapes["target_kind"]
        self.n_outputs = (
            self.shapes["n_items"] if kind == "ranking" else self.shapes["n_classes"] if kind == "multiclass" else 1
        )

    @classmethod
    def build(cls, model_config: dict[str, Any]) -> TaskModule:
        return cls(model_config)
