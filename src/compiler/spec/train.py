"""`train`: how the Lightning Trainer runs. Hardware comes from `gpus`; the stack decides where."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from rscale.compiler.spec.base import Block


class EarlyStopping(Block):
    monitor: str = Field("val_loss", description="A logged validation metric.")
    patience: int = Field(3, ge=1)
    mode: Literal["min", "max"] = "min"


class TrainSpec(Block):
    gpus: int = Field(0, ge=0, le=64, description="0 trains on the CPU; N uses N GPUs (DDP when N > 1).")
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"] = "32-true"
    max_epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(256, ge=1, le=1_048_576)
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = Field(0, ge=0)
    early_stopping: EarlyStopping | None = Field(default_factory=EarlyStopping)
    instance_type: str | None = Field(
        None, description="Override the stack's mapping from `gpus` to a training instance type (step operators)."
    )
