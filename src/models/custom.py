"""Your own LightningModule, named by `model.module: "package.module:Class"` and built with `model.params`.

The minimal interface your class must have:
    __init__(**params)            params from the spec; if it also accepts `shapes`, it gets the sizes
                                  preprocessing found (n_numeric, categorical_sizes, n_items, n_classes,
                                  sequence_vocab, max_len, text_buckets, target_kind)
    forward(batch) -> Tensor      batch: dict of tensors, layout in rscale.models.preprocess; returns
                                  item scores [B, n_items] (ranking), one logit [B] (binary), logits
                                  [B, n_classes] (multiclass) or a standardised value [B] (regression)
Everything else is optional: rscale supplies training_step, validation_step (val_loss and the spec's
metrics) and configure_optimizers (AdamW with train.lr and train.weight_decay) where you define none.
Packages store only the state_dict, so the module must be importable where the package is loaded.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytorch_lightning as pl

from rscale.errors import RscaleError
from rscale.models.task_module import TaskSteps

SUPPLIED = ("training_step", "configure_optimizers")
VALIDATION = ("validation_step", "on_validation_epoch_start", "on_validation_epoch_end")
TRAINING_STEP_PARTS = ("training_loss", "_add_train_loss", "_log_train_loss")  # what rscale's training_step calls


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


class CustomModel:
    """Builds the user's module, filling in rscale's steps where the user defines none."""

    @classmethod
    def build(cls, model_config: dict[str, Any]) -> pl.LightningModule:
        config = model_config["model"]
        user_class = import_module_class(config["module"])
        borrowed: dict[str, Any] = {
            name: TaskSteps.__dict__[name] for name in SUPPLIED if not _defines(user_class, name)
        }
        if "training_step" in borrowed:
            # a loss of the user's own (same name) is what rscale's training_step then optimises
            borrowed.update({name: TaskSteps.__dict__[name] for name in TRAINING_STEP_PARTS if not hasattr(user_class, name)})
        if not _defines(user_class, "validation_step"):
            borrowed.update({name: TaskSteps.__dict__[name] for name in VALIDATION})
        module_class = type(user_class.__name__, (user_class,), {**borrowed, "__module__": user_class.__module__})
        params = dict(config.get("params") or {})
        if "shapes" in inspect.signature(user_class).parameters:
            params["shapes"] = model_config["shapes"]
        try:
            module = module_class(**params)
        except TypeError as exc:
            raise RscaleError(
                f"model.module `{config['module']}` could not be built with model.params {sorted(params)}: {exc}",
                fix="make model.params match the class's __init__ arguments",
            ) from None
        module.rscale_config = model_config
        return module
