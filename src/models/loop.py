"""The training loop of rscale's built-in models: a Lightning Fabric loop, one batch per optimiser step.

Why Fabric and not the Trainer here: the Trainer's per-batch machinery (hook dispatch, the logger
connector, the progress tracking, LightningOptimizer's hooks) costs about half a millisecond per batch on
a CPU, as much as a whole step of a small MLP, and brought rscale to 0.57 of a hand-written loop. The only
ways around it inside the Trainer were private (calling LightningOptimizer's private hooks and the raw
optimiser's step) or bent the Trainer's meaning of a batch (a list of batches per training_step, which callbacks,
`batch_idx`, the progress bar and `log_every_n_steps` then saw). Fabric's public API (`setup`, `autocast`,
`backward`, the wrapped optimiser's `step`, `save`/`load`, `log_dict`) adds a few function calls per batch
and nothing else (about 5 to 10 microseconds a step, 1% of a small MLP's), so this loop keeps pace with a
hand-written one (bench/training.py measures it) while device placement and precision stay Lightning's. What the Trainer's callbacks did is written out here, small:
the best epoch and early stopping on the monitored metric (same rules as ModelCheckpoint and
EarlyStopping: strictly better, patience in epochs), `last.ckpt`/`best.ckpt`, resume, per-epoch logging.

The Trainer is kept where its generality is the point: a user's own LightningModule (rscale.models.custom)
and multi-GPU DDP (rscale.models.training).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import closing, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import BaseModel

from rscale.models import metrics as metric_functions
from rscale.models.task_module import TaskModule, task_loss, task_metrics, task_summary

if TYPE_CHECKING:
    from rscale.models.training import DeviceBatches, FitSettings

TIE_BREAK = 1e-9  # see rscale.models.training.TieBreak: metric -/+ TIE_BREAK * val_loss picks the best epoch


class LoopResult(BaseModel):
    """What the loop hands back to rscale.models.training.train_in_process."""

    history: list[dict[str, float]]
    best_checkpoint: str | None  # None: the module as the last epoch left it is the one to keep
    global_step: int
    batch_placement: str = "host"  # rscale.models.training.DeviceBatches' placement: host, device or prefetch
    placement_reason: str = ""


class Watch(BaseModel):
    """The best monitored value so far and the epochs since it improved (ModelCheckpoint's and EarlyStopping's
    state in one); saved in each checkpoint so a resumed run picks up where it stopped."""

    monitor: str
    mode: str
    best: float | None = None
    best_epoch: int | None = None
    waited: int = 0

    def improved(self, value: float) -> bool:
        """Whether `value` is strictly better than the best so far (a non-finite value never is)."""
        if not math.isfinite(value):
            return False
        return self.best is None or (value < self.best if self.mode == "min" else value > self.best)


def fit(
    fabric: Any,
    module: TaskModule,
    train_tensors: dict[str, torch.Tensor],
    val_tensors: dict[str, torch.Tensor] | None,
    settings: FitSettings,
    *,
    history: list[dict[str, float]],
    on_epoch: Callable[[list[dict[str, float]]], None] | None,
    progress: Any = None,
) -> LoopResult:
    """Train `module` for up to `settings.max_epochs` epochs; after each, validate, log, checkpoint and check
    patience, as `settings` says (rscale.models.training.FitSettings, which the Trainer path reads too).

    Batches are slices of `train_tensors` in seeded shuffles per epoch (rscale.models.training.BatchOrder),
    placed as rscale.models.training.DeviceBatches says: the CPU slices its own tensors; a GPU holds the data
    when it fits (moved once) or gets batches prepared and copied on a background thread (the choice is
    reported once on the status console when `progress` is given, and in the result);
    without validation tensors the last epoch is kept; `settings.tie_break_of`: the metric that
    `settings.monitor` (`<metric>_tie_break`) breaks ties of with val_loss, if any. `on_epoch` receives the
    history after each epoch (None: nothing to write). `progress`: a rich Progress.
    """
    from rscale.models.training import LAST, BatchOrder, DeviceBatches, batch_placement, tensor_bytes

    max_epochs, patience, tie_break_of = settings.max_epochs, settings.patience, settings.tie_break_of
    checkpoints, resume = settings.checkpoints, settings.resume
    watch = Watch(monitor=settings.monitor, mode=settings.mode) if val_tensors is not None else None

    torch_optimizer = module.configure_optimizers()
    model, optimizer = fabric.setup(module, torch_optimizer)
    net: TaskModule = model.module  # the module itself: its own methods, no wrapper in between
    rows_total = len(next(iter(train_tensors.values())))
    batch_order = BatchOrder(rows_total, settings.batch_size, True, settings.seed)
    placement, reason = batch_placement(fabric.device, tensor_bytes(train_tensors, val_tensors))
    batches = DeviceBatches(train_tensors, batch_order, fabric.device, placement, reason)
    val_batches = (DeviceBatches(val_tensors, BatchOrder(len(next(iter(val_tensors.values()))),
                                                         settings.val_batch_size, False),
                                 fabric.device, placement, reason)
                   if val_tensors is not None else None)
    if progress is not None and fabric.device.type != "cpu":
        from rscale.console import err

        err().print(f"batches: {reason}", markup=False, highlight=False)
    # Fabric's optimiser wrapper routes step() through the strategy and the precision plugin: about 60 us a
    # step on these CPUs (8% of a small MLP's step), and needed only where the plugin scales gradients
    # (16-mixed's GradScaler). Without a scaler its step is torch's step, so the loop calls that directly.
    step_optimizer = optimizer.step if getattr(fabric.strategy.precision, "scaler", None) is not None else torch_optimizer.step
    start_epoch, global_step = 0, 0
    if resume is not None:
        state = {"state_dict": model, "optimizer": optimizer}
        rest = fabric.load(resume, state)
        start_epoch, global_step = int(rest["epoch"]) + 1, int(rest["global_step"])
        if watch is not None and rest.get("watch"):
            watch = Watch.model_validate(rest["watch"])
    net.on_train_tensors(train_tensors, fresh=resume is None)
    if net.hparams:  # what the Trainer logs at the start of a fit: the module's save_hyperparameters()
        for logger in fabric.loggers:
            logger.log_hyperparams(net.hparams_initial)

    best_path = checkpoints / "best.ckpt"
    kept_best = best_path if watch is not None and watch.best is not None and best_path.exists() else None
    for epoch in range(start_epoch, max_epochs):
        task = progress.add_task(f"epoch {epoch}", total=len(batch_order)) if progress is not None else None
        every = max(1, len(batch_order) // 50)
        model.train()
        losses: list[torch.Tensor] = []
        rows: list[int] = []
        started = time.perf_counter()
        # closing(): a prefetch thread is joined when the epoch ends, or when a step raises
        with closing(batches.epoch(epoch)) as epoch_batches:
            for step, (batch, batch_rows) in enumerate(epoch_batches):
                with fabric.autocast():
                    loss = net.training_loss(batch)
                # zero_grad on torch's optimiser itself: Fabric's wrapper adds nothing to it, only attribute
                # look-ups through its fallback (a few microseconds a step); step() as `step_optimizer` says
                torch_optimizer.zero_grad()
                fabric.backward(loss)
                step_optimizer()
                # detached, no .item(): the epoch's row-weighted mean is taken once, without a device sync per step
                losses.append(loss.detach())
                rows.append(batch_rows)
                if task is not None and (step + 1) % every == 0:
                    progress.update(task, completed=step + 1)
        global_step += len(rows)
        weights = torch.tensor(rows, dtype=torch.float32, device=losses[0].device)
        entry: dict[str, float] = {"train_loss": float((torch.stack(losses).float() * weights).sum() / weights.sum())}
        train_seconds = time.perf_counter() - started  # after float(): a GPU's queued steps are done by then
        if val_batches is not None:
            entry.update(validate(fabric, net, val_batches))
            if tie_break_of is not None and watch is not None and tie_break_of in entry:
                sign = -1.0 if watch.mode == "max" else 1.0
                entry[watch.monitor] = entry[tie_break_of] + sign * TIE_BREAK * entry["val_loss"]
        logged = {k: v for k, v in entry.items() if watch is None or k != watch.monitor or tie_break_of is None}
        fabric.log_dict({**logged, "epoch": epoch}, step=global_step - 1)
        entry["epoch"] = epoch
        entry["train_seconds"] = train_seconds
        if task is not None:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in entry.items() if k.startswith(("train_loss", "val_")))
            progress.update(task, completed=len(batch_order), description=f"epoch {epoch}: {shown}")

        stop = False
        if watch is not None:
            value = entry.get(watch.monitor, math.nan)
            if watch.improved(value):
                watch.best, watch.best_epoch, watch.waited = value, epoch, 0
                save(fabric, best_path, model, optimizer, epoch, global_step, watch)
                kept_best = best_path
            else:
                watch.waited += 1
                # EarlyStopping's rules: patience epochs without a strictly better value, or a non-finite one
                stop = patience is not None and (watch.waited >= patience or not math.isfinite(value))
        save(fabric, checkpoints / LAST, model, optimizer, epoch, global_step, watch)
        # a resumed run replays any epoch its checkpoint had not yet saved when the first run was killed
        history = [h for h in history if int(h["epoch"]) < epoch] + [entry]
        if on_epoch is not None:
            on_epoch(history)
        if stop:
            break
    for logger in fabric.loggers:
        logger.finalize("success")
    return LoopResult(history=history, best_checkpoint=str(kept_best) if kept_best else None, global_step=global_step,
                      batch_placement=placement, placement_reason=reason)


@torch.no_grad()
def validate(fabric: Any, net: TaskModule, batches: DeviceBatches) -> dict[str, float]:
    """val_loss (row-weighted mean over batches) and the spec's metrics, named as the history logs them;
    `batches`: the validation rows in order (an unshuffled BatchOrder), placed as the training batches are."""
    net.eval()
    total, rows = 0.0, 0
    summaries = []
    with closing(batches.epoch(0)) as epoch_batches:
        for batch, batch_rows in epoch_batches:
            with fabric.autocast():
                output = net(batch)
                loss = task_loss(net, output, batch["target"])
            total += float(loss) * batch_rows
            rows += batch_rows
            summaries.append(task_summary(net, output, batch["target"]))
    net.train()
    results = {"val_loss": total / rows}
    for metric, value in task_metrics(net, summaries).items():
        if math.isfinite(value):
            results[metric_functions.logged_name(metric)] = float(value)
    return results


def save(fabric: Any, path: Path, model: Any, optimizer: Any, epoch: int, global_step: int, watch: Watch | None) -> None:
    """A checkpoint with Lightning's key names for the weights and step count, written whole or not at all."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    state = {"state_dict": model, "optimizer": optimizer, "epoch": epoch, "global_step": global_step,
             "watch": watch.model_dump() if watch is not None else None}
    fabric.save(temporary, state)
    if fabric.is_global_zero:
        os.replace(temporary, path)


def progress_display(enabled: bool) -> Any:
    """A rich progress display on rscale's status console, or a context that shows nothing."""
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rscale.console import err

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err(), transient=False)

