"""`train`: how the Lightning Trainer runs. Hardware comes from `gpus`; the stack decides where."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rscale.compiler.spec.base import Block


class EarlyStopping(Block):
    """Stop training when a validation metric stops improving."""

    monitor: str = Field("val_loss", description="A logged validation metric: val_loss or val_<metric>.")
    patience: int = Field(3, ge=1, description="Epochs without improvement before stopping.")
    mode: Literal["min", "max"] = Field("min", description="`min` when lower is better, `max` otherwise.")


class TrainSpec(Block):
    gpus: int = Field(0, ge=0, le=64, description="0 trains on the CPU; N uses N GPUs (DDP when N > 1).")
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"] = Field(
        "32-true", description="Lightning precision; 16-mixed needs a GPU."
    )
    max_epochs: int = Field(10, ge=1, le=10_000, description="Most passes over the training rows.")
    batch_size: int = Field(256, ge=1, le=1_048_576, description="Rows per training step.")
    lr: float = Field(1e-3, gt=0, le=10, description="Learning rate of the AdamW optimiser.")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (AdamW weight decay).")
    seed: int = Field(0, ge=0, description="Seed for initialisation and shuffling; the split has its own hash.")
    early_stopping: EarlyStopping | None = Field(
        default_factory=EarlyStopping, description="null trains for max_epochs without stopping early."
    )
    instance_type: str | None = Field(
        None, description="Override the stack's mapping from `gpus` to a training instance type (step operators)."
    )
