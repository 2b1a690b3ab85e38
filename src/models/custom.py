"""Your own LightningModule, named by `model.module: "package.module:Class"` and built with `model.params`.

The minimal interface your class must have:
    __init__(**params)            params from the spec; if it also accepts `shapes`, it gets the sizes
                                  preprocessing found (n_numeric, categorical_sizes, n_items, n_classes,
                                  sequence_vocab, max_len, text_buckets, target_kind)
    forward(batch) -> Tensor      batch: dict of tensors, layout in rscale.models.preprocess; returns
                                  item scores [B, n_items] (ranking), one logit [B] (binary), logits
                                  [B, n_classes] (multiclass) or a standardised value [B] (regression)
Everything else is optional. A class that defines none of training_step, validation_step and
configure_optimizers gets rscale's (val_loss and the spec's metrics; AdamW with train.lr and
train.weight_decay; the loss is the task's, or your `training_loss(batch)` if you define one): the Trainer
trains a `TaskTraining` that holds your module as its child. A class that defines any of them is a whole
LightningModule of its own, and the Trainer trains it exactly as written (to use rscale's steps there,
derive from rscale.models.task_module.TaskSteps). Your class is never changed or subclassed: the package
holds your module, and stores only its state_dict, so it must be importable where the package is loaded.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytorch_lightning as pl
import torch

from rscale.errors import RscaleError
from rscale.models.task_module import TaskSteps

OWN_STEPS = ("training_step", "validation_step", "configure_optimizers")  # any of them: trained as written


def import_module_class(reference: str) -> type:
    module_name, _, attribute = reference.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise RscaleError(
            f"model.module `{reference}` cannot be imported: {exc}",
            fix="make the module importable (installed, or on PYTHONPATH) and check the class name after ':'",
        ) from None
    if not (inspect.isclass(found) and issubclass(found, pl.LightningModule)):
        raise RscaleError(
            f"model.module `{reference}` is not a LightningModule subclass",
            fix="point model.module at a class deriving from pytorch_lightning.LightningModule",
        )
    return found


def _defines(cls: type, name: str) -> bool:
    return getattr(cls, name, None) is not getattr(pl.LightningModule, name, None)


def has_own_steps(module: pl.LightningModule) -> bool:
    """Whether the module brings its own training/validation steps or optimiser (then it trains as written)."""
    return any(_defines(type(module), name) for name in OWN_STEPS)


class CustomModel:
    """Builds the user's module as its class defines it, with model.params (and `shapes` if it takes them)."""

    @classmethod
    def build(cls, model_config: dict[str, Any]) -> pl.LightningModule:
        config = model_config["model"]
        user_class = import_module_class(config["module"])
        params = dict(config.get("params") or {})
        if "shapes" in inspect.signature(user_class).parameters:
            params["shapes"] = model_config["shapes"]
        try:
            return user_class(**params)  # type: ignore[no-any-return]
        except TypeError as exc:
            raise RscaleError(
                f"model.module `{config['module']}` could not be built with model.params {sorted(params)}: {exc}",
                fix="make model.params match the class's __init__ arguments",
            ) from None


class TaskTraining(TaskSteps, pl.LightningModule):
    """rscale's steps around a user's module that has none of its own: the Trainer trains this, the user's
    module is its child `model` (same parameters, unchanged class), and the package keeps only `model`."""

    def __init__(self, model: pl.LightningModule, model_config: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.rscale_config = model_config

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch)  # type: ignore[no-any-return]

    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The user's `training_loss(batch)` where the module has one, else the task's loss of its output."""
        own = getattr(self.model, "training_loss", None)
        return own(batch) if callable(own) else super().training_loss(batch)
