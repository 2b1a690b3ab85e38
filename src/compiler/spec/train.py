"""`train`: how the Lightning Trainer runs. Hardware comes from `gpus`; the stack decides where.

Epochs, batch size and early-stopping patience left out of the spec are derived from the number of
training rows when training starts (`TrainSpec.settings`), so a 500-row table and a 5-million-row one
both get a sensible number of optimiser steps: the rule is written in each field's description, and
the train step reports the values it used. The best epoch, and early stopping, follow the gate's metric
on the validation split unless `early_stopping.monitor` says otherwise.
"""

import math
from typing import Literal

from pydantic import BaseModel, Field

from rscale.compiler.spec.base import Block, no_items

TARGET_STEPS = 4000  # optimiser steps a run aims at when max_epochs is derived
MIN_EPOCHS, MAX_EPOCHS = 10, 500
MIN_BATCH, MAX_BATCH = 32, 512


class EarlyStopping(Block):
    """Stop training when a validation metric stops improving."""

    monitor: str | None = Field(
        None,
        description="A logged validation metric: val_loss or val_<metric> (`hit_rate@10` logs as "
        "val_hit_rate_at_10). Left out: the gate's metric (else the first of evaluate.metrics); it also "
        "picks the checkpoint that is packaged.",
    )
    patience: int | None = Field(
        None,
        ge=1,
        description="Epochs without improvement before stopping. Left out: max_epochs / 10, between 3 and 20.",
    )
    mode: Literal["min", "max"] | None = Field(
        None, description="`min` when lower is better, `max` otherwise. Left out: follows the monitored metric."
    )


class TrainSettings(BaseModel):
    """The values training runs with: the spec's, or derived from the training row count where it left them out."""

    max_epochs: int
    batch_size: int
    monitor: str
    mode: Literal["min", "max"]
    patience: int | None
    derived: list[str] = Field(default_factory=no_items, description="Which of these were derived, not set.")


class TrainSpec(Block):
    gpus: int = Field(0, ge=0, le=64, description="0 trains on the CPU; N uses N GPUs (DDP when N > 1).")
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"] = Field(
        "32-true", description="Lightning precision; 16-mixed needs a GPU."
    )
    max_epochs: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description=f"Most passes over the training rows. Left out: enough epochs for about {TARGET_STEPS} "
        f"optimiser steps, between {MIN_EPOCHS} and {MAX_EPOCHS} (early stopping usually ends sooner).",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=1_048_576,
        description=f"Rows per training step. Left out: the power of two nearest below rows / 64, between "
        f"{MIN_BATCH} and {MAX_BATCH} (32 for 2,000 rows, 512 from 32,768 rows up).",
    )
    lr: float = Field(1e-3, gt=0, le=10, description="Learning rate of the AdamW optimiser.")
    weight_decay: float = Field(
        0.01, ge=0, description="AdamW's decoupled weight decay (PyTorch's default, 0.01); 0 turns it off."
    )
    seed: int = Field(0, ge=0, description="Seed for initialisation and shuffling; the split has its own hash.")
    early_stopping: EarlyStopping | None = Field(
        default_factory=EarlyStopping, description="null trains for max_epochs without stopping early."
    )
    instance_type: str | None = Field(
        None, description="Override the stack's mapping from `gpus` to a training instance type (step operators)."
    )

    def settings(self, rows: int, monitor_metric: str | None) -> TrainSettings:
        """Epochs, batch size and early stopping for `rows` training rows; `monitor_metric` is the spec metric
        (e.g. the gate's `auc`) whose validation value picks the best epoch when `early_stopping.monitor` is
        left out (None: val_loss)."""
        derived = []
        batch_size = self.batch_size
        if batch_size is None:
            batch_size = min(MAX_BATCH, max(MIN_BATCH, 2 ** int(math.floor(math.log2(max(rows / 64, 1))))))
            derived.append("batch_size")
        max_epochs = self.max_epochs
        if max_epochs is None:
            steps_per_epoch = max(1, math.ceil(rows / batch_size))
            max_epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS / steps_per_epoch)))
            derived.append("max_epochs")
        stopping = self.early_stopping
        monitor = stopping.monitor if stopping and stopping.monitor else None
        if monitor is None:
            monitor = "val_" + monitor_metric.replace("@", "_at_") if monitor_metric else "val_loss"
            derived.append("monitor")
        mode = stopping.mode if stopping and stopping.mode else None
        if mode is None:
            lower = monitor == "val_loss" or monitor.removeprefix("val_") in ("log_loss", "rmse", "mae")
            mode = "min" if lower else "max"
        patience = None
        if stopping is not None:
            patience = stopping.patience
            if patience is None:
                patience = min(20, max(3, max_epochs // 10))
                derived.append("patience")
        return TrainSettings(
            max_epochs=max_epochs,
            batch_size=batch_size,
            monitor=monitor,
            mode=mode,
            patience=patience,
            derived=derived,
        )
