"""Training: a plan and two Arrow tables in, a model package and its history out.

Inputs are encoded once into tensors, and batches are slices of them (no worker processes, no per-row
collation). rscale's built-in models train on one device in a Lightning Fabric loop (rscale.models.loop,
which says why: it runs at the speed of a hand-written loop through public API only); a user's own
LightningModule (rscale.models.custom) and multi-GPU DDP train with the Lightning Trainer, as Lightning
documents it. Both read one `FitSettings` record, built once from `plan.hardware` and `plan.train`, keep
the same history, best epoch and checkpoints, and a re-run in the same workdir resumes from
`checkpoints/last.ckpt`.
Multi-GPU DDP (`hardware.launcher == "subprocess"`) never runs in the calling process: it is launched
as `torchrun ... -m rscale.models.launch <workdir>`, because DDP inside a ZenML step re-executes the
pipeline for every extra rank.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Generator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pytorch_lightning as pl
import torch
from pydantic import BaseModel

from rscale.errors import RscaleError
from rscale.models.task_module import TaskModule, TaskSteps

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan
    from rscale.compiler.spec.train import TrainSettings

CHECKPOINTS = "checkpoints"
LAST = "last.ckpt"
PACKAGE = "package"
DDP_JOB = "ddp"
RESULT = "result.json"
HISTORY = "history.json"
DDP_ACCELERATOR_ENV = "RS_DDP_ACCELERATOR"  # tests: "cpu" runs the DDP child on CPU processes with gloo
VAL_BATCH_MIN = 1024  # validation has no gradients to keep: its batches are at least this big


class TrainResult(BaseModel):
    package_dir: str
    history: list[dict[str, float]]
    best_epoch: int | None
    epochs_run: int
    samples_per_second: float
    train_rows: int
    checkpoint: str | None
    world_size: int = 1
    resumed_from: str | None = None
    settings: dict[str, Any] = {}
    warnings: list[str] = []
    batch_placement: str | None = None  # DeviceBatches' choice on the Fabric loop: host, device or prefetch


@dataclass(frozen=True)
class FitSettings:
    """What both fit paths (the Fabric loop and the Trainer) train with, built once from the plan by
    `fit_settings`, so the two read one record and neither keeps a default of its own.

    `monitor` is what the best checkpoint and early stopping follow: the spec's monitored metric, or
    `<metric>_tie_break` (TieBreak) when `tie_break_of` names that metric. `patience` None: no early stopping
    (the spec turned it off, or there are no validation rows). `history_path` None: this process does not
    write the history (a DDP rank other than 0).
    """

    train: TrainSettings  # epochs, batch size, monitored metric and patience as the spec gives or derives them
    accelerator: str
    devices: int
    strategy: str
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"]  # plan.hardware.precision's values
    seed: int
    max_epochs: int
    batch_size: int
    val_batch_size: int
    validates: bool
    monitor: str
    mode: Literal["min", "max"]
    tie_break_of: str | None
    patience: int | None
    checkpoints: Path
    resume: Path | None
    history_path: Path | None


def fit_settings(
    plan: Plan,
    rows: int,
    workdir: Path,
    *,
    validates: bool,
    resume: Path | None,
    writes_history: bool = True,
    accelerator: str | None = None,
    devices: int | None = None,
    strategy: str | None = None,
) -> FitSettings:
    """The FitSettings of `plan` for `rows` training rows; `accelerator`, `devices` and `strategy` replace the
    plan's hardware where given (a DDP child runs the plan's devices as torchrun's ranks)."""
    train = training_settings(plan, rows)
    tie_break_of = train.monitor if train.monitor != "val_loss" and validates else None
    return FitSettings(
        train=train,
        accelerator=accelerator or plan.hardware.accelerator,
        devices=devices or plan.hardware.devices,
        strategy=strategy or plan.hardware.strategy,
        precision=plan.hardware.precision,
        seed=plan.train.seed,
        max_epochs=train.max_epochs,
        batch_size=train.batch_size,
        val_batch_size=max(train.batch_size, VAL_BATCH_MIN),
        validates=validates,
        monitor=TieBreak(tie_break_of, train.mode).name if tie_break_of is not None else train.monitor,
        mode=train.mode,
        tie_break_of=tie_break_of,
        patience=train.patience if validates else None,
        checkpoints=workdir / CHECKPOINTS,
        resume=resume,
        history_path=workdir / HISTORY if writes_history else None,
    )


# --- batches --------------------------------------------------------------------------------------
class TensorBatches(torch.utils.data.Dataset):
    """Pre-built tensors; indexing with a tensor of row indices returns one whole batch."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self.rows = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = {name: tensor[index] for name, tensor in self.tensors.items()}
        if "lengths" in batch:
            # sequences are right-padded to max_len; a batch of short sessions needs only its longest
            width = max(1, int(batch["lengths"].max()))
            batch["sequence"] = batch["sequence"][:, :width]
        return batch


class BatchOrder(torch.utils.data.Sampler):
    """Yields index tensors, one per batch: seeded shuffles per epoch (Lightning calls set_epoch), sharded by rank."""

    def __init__(
        self,
        rows: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.rows, self.batch_size, self.shuffle, self.seed = rows, batch_size, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self.per_rank = math.ceil(rows / world_size) if world_size > 1 else rows

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.rows, generator=generator)
        else:
            order = torch.arange(self.rows)
        if self.world_size > 1:
            # every rank must run the same number of steps, so the shortest shards borrow a few rows
            padded = self.per_rank * self.world_size
            if padded > self.rows:
                order = torch.cat([order, order[: padded - self.rows]])
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._order().split(self.batch_size))

    def __len__(self) -> int:
        return math.ceil(self.per_rank / self.batch_size)


def _as_is(batch: Any) -> Any:
    return batch


def batch_loader(
    tensors: dict[str, torch.Tensor],
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> torch.utils.data.DataLoader:
    dataset = TensorBatches(tensors)
    order = BatchOrder(len(dataset), batch_size, shuffle, seed, rank, world_size)
    return torch.utils.data.DataLoader(dataset, sampler=order, batch_size=None, collate_fn=_as_is, num_workers=0)


# --- batches on a GPU: moved once, or prepared off the training thread ------------------------------
BATCH_PLACEMENT_ENV = "RS_BATCH_PLACEMENT"  # "auto" (default), "device" or "prefetch": forces DeviceBatches' choice
PLACEMENTS = ("host", "device", "prefetch")
# The encoded tensors (training and validation together) live on the device for the whole fit when they take at
# most this fraction of the device's free memory before training. A quarter, because the rest must hold what
# training itself allocates and frees each step: the weights, the optimiser's state (AdamW: two more copies),
# the activations of the largest batch and the allocator's fragmentation; the data is read-only and never freed,
# so it should not crowd them. Larger data stays on the host and is prefetched.
DEVICE_RESIDENT_FRACTION = 0.25
PREFETCH_DEPTH = 3  # batches the prefetch thread prepares ahead: enough to hide a copy behind a step, few in memory


def tensor_bytes(*groups: dict[str, torch.Tensor] | None) -> int:
    """Bytes the tensors of `groups` take (None: nothing)."""
    return sum(t.numel() * t.element_size() for group in groups if group for t in group.values())


def batch_placement(device: torch.device, data_bytes: int) -> tuple[str, str]:
    """Where the batches of a fit on `device` come from, and why, as DeviceBatches' docstring says.

    `RS_BATCH_PLACEMENT` (device / prefetch) forces the choice on any device, the CPU included (tests, benches);
    "auto" or unset: the CPU keeps its slices of the host tensors; a CUDA device holds the data when it takes at
    most DEVICE_RESIDENT_FRACTION of the free memory torch.cuda.mem_get_info reports; any other device (whose free
    memory torch cannot tell) is prefetched.
    """
    forced = os.environ.get(BATCH_PLACEMENT_ENV, "auto").strip().lower()
    if forced not in ("auto", "device", "prefetch"):
        raise RscaleError(
            f"{BATCH_PLACEMENT_ENV} is {forced!r}, expected auto, device or prefetch",
            fix=f"unset {BATCH_PLACEMENT_ENV}, or set it to one of those",
        )
    mib = data_bytes / 2**20
    if forced != "auto":
        return forced, f"{forced} ({BATCH_PLACEMENT_ENV}={forced}; data {mib:.1f} MiB)"
    if device.type == "cpu":
        return "host", "host (the CPU slices its own tensors)"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        limit = DEVICE_RESIDENT_FRACTION * free
        if data_bytes <= limit:
            return "device", (f"device (data {mib:.1f} MiB <= {DEVICE_RESIDENT_FRACTION:g} of "
                              f"{free / 2**20:.0f} MiB free: moved once, batches indexed on the GPU)")
        return "prefetch", (f"prefetch (data {mib:.1f} MiB > {DEVICE_RESIDENT_FRACTION:g} of {free / 2**20:.0f} MiB "
                            f"free: pinned batches prepared on a background thread)")
    return "prefetch", f"prefetch ({device.type} does not report its free memory; data {mib:.1f} MiB)"


Batches = Generator[tuple[dict[str, torch.Tensor], int], None, None]  # one epoch's batches, each with its rows


class _Failure:
    """What the prefetch thread hands over instead of a batch when preparing one raised."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class DeviceBatches:
    """The batches of one fit on its device, in BatchOrder's order, with the contents TensorBatches gives.

    Three placements (`placement`; `reason` says why it was chosen, for the run's status line):
    - "host": the CPU. Each batch is TensorBatches' slice of the host tensors, nothing else (the CPU loop's
      speed is measured against a hand-written loop in bench/training.py).
    - "device": the tensors move to the device once, here, and each epoch's shuffled index once per epoch; a
      batch is a gather on the device, so a step does no host-to-device copy and no CPU gather. Sequence
      widths (TensorBatches trims `sequence` to the batch's longest session) come from a host copy of
      `lengths`, so reading them never waits for the device.
    - "prefetch": the data stays on the host; a background thread gathers each batch into page-locked (pinned)
      memory and copies it with `non_blocking=True` on a side CUDA stream, up to PREFETCH_DEPTH batches ahead
      (a bounded queue), so the copy overlaps the previous step. The host tensors themselves are not pinned:
      the gather reads them on the CPU, and only a copy's source must be pinned for it to be asynchronous
      (pinning them too would hold a second copy of the data in locked memory). An error in the thread is
      raised on the training thread at the batch it failed on; the thread is joined when the epoch's
      iterator ends or is closed (use `contextlib.closing`).
    Every placement yields the same batches in the same order (tests/models/test_models_training_placement.py),
    so a run's result does not depend on where its batches came from.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        order: BatchOrder,
        device: torch.device,
        placement: str,
        reason: str = "",
    ) -> None:
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, not {placement!r}")
        self.order, self.device, self.placement, self.reason = order, torch.device(device), placement, reason
        self.host = TensorBatches(tensors)
        self.cuda = self.device.type == "cuda"
        self.lengths = tensors.get("lengths")  # host copy: sequence widths without a device sync
        self.on_device: dict[str, torch.Tensor] = {}
        if placement == "device":
            self.on_device = {name: tensor.to(self.device) for name, tensor in tensors.items()}

    def __len__(self) -> int:
        return len(self.order)

    def epoch(self, epoch: int) -> Batches:
        """The epoch's batches, each with its row count, in BatchOrder's seeded order for `epoch`."""
        self.order.set_epoch(epoch)
        if self.placement == "device":
            return self._on_device()
        if self.placement == "prefetch":
            return self._prefetched()
        return self._on_host()

    def _on_host(self) -> Batches:
        host = self.host
        for index in self.order:
            yield host[index], len(index)

    def _width(self, index: torch.Tensor) -> int | None:
        return max(1, int(self.lengths[index].max())) if self.lengths is not None else None

    def _on_device(self) -> Batches:
        indices = list(self.order)
        if not indices:
            return
        moved = torch.cat(indices).to(self.device).split([len(index) for index in indices])
        for index, device_index in zip(indices, moved, strict=True):
            width = self._width(index)
            batch = {name: tensor[device_index] for name, tensor in self.on_device.items()}
            if width is not None:
                batch["sequence"] = batch["sequence"][:, :width]
            yield batch, len(index)

    def _gather(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """TensorBatches' batch for `index`, gathered straight into pinned memory when CUDA is in use."""
        width = self._width(index)
        batch = {}
        for name, tensor in self.host.tensors.items():
            source = tensor[:, :width] if name == "sequence" and width is not None else tensor
            out = torch.empty((len(index), *source.shape[1:]), dtype=source.dtype, pin_memory=self.cuda)
            batch[name] = torch.index_select(source, 0, index, out=out)
        return batch

    def _produce(self, stream: torch.cuda.Stream | None, hand_over: Callable[[Any], bool]) -> None:
        """The prefetch thread's work: each batch gathered (pinned), copied on `stream`, handed over in order."""
        for index in self.order:
            batch = self._gather(index)
            event = None
            if stream is not None:
                with torch.cuda.stream(stream):
                    batch = {name: t.to(self.device, non_blocking=True) for name, t in batch.items()}
                    event = torch.cuda.Event()
                    event.record(stream)
            elif self.device.type != "cpu":
                batch = {name: t.to(self.device, non_blocking=True) for name, t in batch.items()}
            if not hand_over((batch, len(index), event)):
                return

    def _prefetched(self) -> Batches:
        ready: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH_DEPTH)
        stop = threading.Event()
        stream = torch.cuda.Stream(self.device) if self.cuda else None
        done = object()

        def hand_over(item: Any) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                # a new thread starts on CUDA's default device: pinned buffers and copies belong to this one
                with torch.cuda.device(self.device) if self.cuda else nullcontext():
                    self._produce(stream, hand_over)
                hand_over(done)
            except BaseException as error:  # handed to the training thread, which raises it
                hand_over(_Failure(error))

        thread = threading.Thread(target=produce, name="rscale-batch-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                item = ready.get()
                if item is done:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                batch, rows, event = item
                if event is not None:
                    current = torch.cuda.current_stream(self.device)
                    current.wait_event(event)
                    for tensor in batch.values():
                        tensor.record_stream(current)  # made on the side stream, used and freed on this one
                yield batch, rows
        finally:
            stop.set()
            thread.join()


# --- the public entry point -----------------------------------------------------------------------
def train(
    plan: Plan,
    train: pa.Table,
    validation: pa.Table,
    workdir: Path,
    loggers: Sequence = (),
    progress: bool = True,
) -> TrainResult:
    """Fit the plan's model on `train`, validate on `validation`, and write a package under workdir/package."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if train.num_rows == 0:
        raise RscaleError("the training split has no rows", fix="check data.query and the split fractions")
    hardware = plan.hardware
    if hardware.launcher == "subprocess":
        if os.environ.get(DDP_ACCELERATOR_ENV) != "cpu":
            check_gpus(plan)
        return _train_in_child(plan, train, validation, workdir, loggers, progress)
    check_gpus(plan)
    return train_in_process(plan, train, validation, workdir, loggers, progress)


def check_gpus(plan: Plan) -> None:
    """Fail before Lightning does, with the fix, when the plan asks for GPUs this machine lacks."""
    hardware = plan.hardware
    if hardware.accelerator != "gpu":
        return
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available < hardware.devices:
        found = "no CUDA GPU is available" if available == 0 else f"only {available} CUDA GPU(s) are available"
        raise RscaleError(
            f"train.gpus is {plan.train.gpus}, but {found} on this machine (torch {torch.__version__})",
            fix="set train.gpus: 0 (override: train.gpus=0) to train on the CPU, or run on a stack with GPUs "
            "(a SageMaker step operator)",
        )


# --- in this process ------------------------------------------------------------------------------
def train_in_process(
    plan: Plan,
    train: pa.Table,
    validation: pa.Table,
    workdir: Path,
    loggers: Sequence = (),
    progress: bool = True,
    *,
    accelerator: str | None = None,
    devices: int | None = None,
    strategy: str | None = None,
) -> TrainResult:
    """Train here, with Lightning; under torchrun every rank runs this and rank 0 writes the package."""
    from rscale.models.package import build_module, model_config_for, write_package
    from rscale.models.preprocess import Preprocessor

    _quiet_lightning()
    workdir = Path(workdir)
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    pl.seed_everything(plan.train.seed, verbose=False)

    checkpoints = workdir / CHECKPOINTS
    last = checkpoints / LAST
    preprocess_path, config_path = workdir / "preprocess.json", workdir / "model_config.json"
    preprocessor, train_tensors = Preprocessor.fit_transform(plan, train)  # one pass over each column
    model_config = model_config_for(plan, preprocessor)
    resume = None
    if last.exists() and preprocess_path.exists() and config_path.exists():
        previous = json.loads(config_path.read_text())
        if {k: previous.get(k) for k in ("model", "shapes")} == {k: model_config[k] for k in ("model", "shapes")}:
            # resume with the vocabularies the checkpoint was trained with
            preprocessor = Preprocessor.load(preprocess_path)
            model_config = model_config_for(plan, preprocessor)
            train_tensors = preprocessor.transform(train)
            resume = last
        elif rank == 0:
            warnings.warn(f"{last} was trained with another model or data shape; starting afresh", stacklevel=2)
            shutil.rmtree(checkpoints, ignore_errors=True)
    if rank == 0:
        write_json(preprocess_path, preprocessor.to_dict())
        write_json(config_path, model_config)

    module = build_module(model_config)
    has_validation = validation is not None and validation.num_rows > 0
    val_tensors = preprocessor.transform(validation) if has_validation else None
    settings = fit_settings(plan, train.num_rows, workdir, validates=has_validation, resume=resume,
                            writes_history=rank == 0, accelerator=accelerator, devices=devices, strategy=strategy)
    history_path = workdir / HISTORY
    earlier = json.loads(history_path.read_text()) if resume and history_path.exists() else []

    if isinstance(module, TaskModule) and world_size == 1 and settings.devices == 1:
        run = _fit_in_loop(module, train_tensors, val_tensors, settings, earlier, loggers, progress)
    else:
        run = _fit_with_trainer(module, model_config, train_tensors, val_tensors, settings, earlier, loggers, progress)
    history, best_checkpoint, world_size, is_global_zero, trained, placement = run

    best_epoch = (_best_epoch(history, settings.monitor, settings.mode) if has_validation
                  else (history[-1]["epoch"] if history else None))
    if best_checkpoint and Path(best_checkpoint).exists():
        state = torch.load(best_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    seconds = sum(h.get("train_seconds", 0.0) for h in history)
    samples = train.num_rows * sum(1 for h in history if "train_seconds" in h)
    package_dir = workdir / PACKAGE
    if is_global_zero:
        write_package(package_dir, trained.cpu(), preprocessor, model_config, name=plan.name, plan_hash=plan.hash)
    return TrainResult(
        package_dir=str(package_dir),
        history=history,
        best_epoch=best_epoch,
        epochs_run=len(history),
        samples_per_second=samples / seconds if seconds > 0 else 0.0,
        train_rows=train.num_rows,
        checkpoint=str(last) if last.exists() else None,
        world_size=world_size,
        resumed_from=str(resume) if resume else None,
        settings=settings.train.model_dump(),
        warnings=training_warnings(settings.train, history, best_epoch),
        batch_placement=placement,
    )


Fitted = tuple[list[dict[str, float]], str | None, int, bool, Any, str | None]  # history, best checkpoint,
# world size, whether this process writes the package, the module the package holds, and where the Fabric
# loop's batches came from (DeviceBatches; None: the Trainer's DataLoader)


def _fit_in_loop(
    module: TaskModule,
    train_tensors: dict[str, torch.Tensor],
    val_tensors: dict[str, torch.Tensor] | None,
    settings: FitSettings,
    earlier: list[dict[str, float]],
    loggers: Sequence,
    progress: bool,
) -> Fitted:
    """A built-in model on one device (so Fabric's single-device strategy): rscale's Fabric loop
    (rscale.models.loop says why)."""
    from lightning_fabric import Fabric

    from rscale.models import loop

    history_path = settings.history_path
    fabric = _configured(
        lambda: Fabric(accelerator=settings.accelerator, devices=1, strategy="auto", precision=settings.precision,
                       loggers=list(loggers) or None)
    )
    settings.checkpoints.mkdir(parents=True, exist_ok=True)
    with loop.progress_display(progress) as display:
        result = loop.fit(
            fabric, module, train_tensors, val_tensors, settings,
            history=earlier,
            on_epoch=(lambda history: write_json(history_path, history)) if history_path is not None else None,
            progress=display,
        )
    return result.history, result.best_checkpoint, 1, True, module, result.batch_placement


def _fit_with_trainer(
    module: pl.LightningModule,
    model_config: dict[str, Any],
    train_tensors: dict[str, torch.Tensor],
    val_tensors: dict[str, torch.Tensor] | None,
    settings: FitSettings,
    earlier: list[dict[str, float]],
    loggers: Sequence,
    progress: bool,
) -> Fitted:
    """A user's own module, or DDP: the Lightning Trainer with its callbacks, one batch per step.

    A user's module that has no steps of its own trains inside rscale.models.custom.TaskTraining (the
    package keeps the user's module); one with its own steps trains exactly as written, and is validated
    only if it defines validation_step.
    """
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar

    from rscale.models.custom import TaskTraining, has_own_steps

    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    trained = module
    if not isinstance(module, (TaskModule, TaskSteps)) and not has_own_steps(module):
        module = TaskTraining(module, model_config)
    own_validation = type(module).validation_step is not pl.LightningModule.validation_step
    train_loader = batch_loader(train_tensors, settings.batch_size, True, settings.seed, rank, world_size)
    val_loader = (
        batch_loader(val_tensors, settings.val_batch_size, False)
        if val_tensors is not None and own_validation
        else None
    )
    validates = val_loader is not None
    checkpoint = ModelCheckpoint(
        dirpath=settings.checkpoints,
        filename="best",
        monitor=settings.monitor if validates else None,
        mode=settings.mode,
        save_last=True,
        save_top_k=1,
        enable_version_counter=False,
    )
    recorder = HistoryRecorder(earlier, settings.history_path)
    tie_break = [TieBreak(settings.tie_break_of, settings.mode)] if settings.tie_break_of and validates else []
    callbacks: list[pl.Callback] = [*tie_break, checkpoint, recorder]
    if settings.patience is not None and validates:
        callbacks.append(EarlyStopping(monitor=settings.monitor, patience=settings.patience, mode=settings.mode))
    if progress:
        callbacks.append(RichProgressBar(leave=True))
    trainer = _configured(
        lambda: pl.Trainer(
            accelerator=settings.accelerator,
            devices=settings.devices,
            strategy=settings.strategy,
            precision=settings.precision,
            max_epochs=settings.max_epochs,
            logger=list(loggers) if loggers else False,
            callbacks=callbacks,
            enable_progress_bar=progress,
            enable_model_summary=False,
            use_distributed_sampler=False,
            num_sanity_val_steps=0,
            log_every_n_steps=max(1, min(50, len(train_loader))),
            default_root_dir=str(settings.checkpoints.parent),
        )
    )
    resume = settings.resume
    _configured(lambda: trainer.fit(module, train_loader, val_loader, ckpt_path=str(resume) if resume else None))
    best = checkpoint.best_model_path or None
    if best and module is not trained:  # TaskTraining's checkpoint: the user's module is its `model.` child
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        trained.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
        best = None
    return recorder.history, best, trainer.world_size, trainer.is_global_zero, trained, None


def _configured(make: Any) -> Any:
    """Lightning's configuration errors (a precision or device this machine cannot do) as errors with a fix."""
    try:
        return make()
    except Exception as exc:
        if type(exc).__name__ == "MisconfigurationException":
            raise RscaleError(
                f"the trainer rejected the plan's hardware settings: {exc}",
                fix="check train.gpus and train.precision for this machine",
            ) from None
        raise


def training_settings(plan: Plan, rows: int) -> TrainSettings:
    """The plan's epochs, batch size and early stopping, derived from `rows` where the spec left them out; the
    best epoch follows the gate's metric on validation (else the first spec metric). A custom module may
    validate with its own step, which need not log the spec's metrics: it is monitored on val_loss."""
    gate = plan.evaluate.gate
    metric = None if plan.model.type == "custom" else gate.metric if gate else plan.evaluate.metrics[0]
    return plan.train.settings(rows, metric)


def training_warnings(settings: TrainSettings, history: list[dict[str, float]], best_epoch: float | None) -> list[str]:
    """What the user should change: a best epoch that is the last one means training stopped too soon."""
    if not history or best_epoch is None or len(history) < settings.max_epochs:
        return []
    last = int(history[-1]["epoch"])
    if int(best_epoch) != last:
        return []
    more = settings.max_epochs * 2
    return [
        f"the best epoch ({settings.monitor}) was the last of {settings.max_epochs}: the model may still be "
        f"improving; train longer: set train.max_epochs: {more} in the spec (override: train.max_epochs={more})"
    ]


def write_json(path: Path, value: Any) -> None:
    """Write JSON whole or not at all (a temporary file, then a rename): a process killed mid-write, which
    the resume promise is about, must not leave a half file that the resumed run cannot read."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)


def _best_epoch(history: list[dict[str, float]], monitor: str, mode: str) -> int | None:
    scored = [h for h in history if monitor in h and math.isfinite(h[monitor])]
    if not scored:
        return None
    pick = min if mode == "min" else max
    return int(pick(scored, key=lambda h: h[monitor])["epoch"])


def _quiet_lightning() -> None:
    """Lightning's banners ("GPU available", "few workers", model summaries) are noise for a CLI."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*Checkpoint directory.*exists and is not empty.*")
    warnings.filterwarnings("ignore", ".*is_leaf.*")
    warnings.filterwarnings("ignore", ".*but have no `val_dataloader`.*")  # a split without validation rows


class TieBreak(pl.Callback):
    """Adds `<monitor>_tie_break`: the monitored metric with val_loss as a tie-break, which picks the best epoch.

    A metric such as AUC or hit rate on a small validation split moves in steps and reaches its best value
    early, while the model is still improving (val_loss still falls; on a 57-row validation split AUC is
    often 1.0 by epoch 3, with accuracy far from its best). Among epochs with the same metric value, the one
    with the lower val_loss is then the better one, so the checkpoint and early stopping follow
    metric -/+ TIE_BREAK * val_loss (in float64, far below one step of the metric). Runs first among the
    callbacks, at validation end, before the checkpoint and early stopping read the trainer's metrics.
    """

    TIE_BREAK = 1e-9

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.name = f"{monitor}_tie_break"

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        metrics = trainer.callback_metrics
        if self.monitor in metrics and "val_loss" in metrics:
            sign = -1.0 if self.mode == "max" else 1.0
            value = float(metrics[self.monitor]) + sign * self.TIE_BREAK * float(metrics["val_loss"])
            metrics[self.name] = torch.tensor(value, dtype=torch.float64)


class HistoryRecorder(pl.Callback):
    """Keeps one dict of logged metrics per epoch (after validation), and the pure training time."""

    def __init__(self, earlier: list[dict[str, float]], path: Path | None) -> None:
        self.history = list(earlier)
        self.path = path
        self._started = self._last_batch = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._started = self._last_batch = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._last_batch = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        entry: dict[str, float] = {"epoch": float(trainer.current_epoch)}
        for name, value in trainer.callback_metrics.items():
            entry[name] = float(value)
        entry["train_seconds"] = self._last_batch - self._started
        entry["epoch"] = int(entry["epoch"])  # type: ignore[assignment]
        # a resumed run replays any epoch its checkpoint had not yet saved when the first run was killed:
        # the replay's entry replaces the earlier one, so each epoch is in the history once
        self.history = [h for h in self.history if int(h["epoch"]) < entry["epoch"]] + [entry]
        if self.path is not None:
            write_json(self.path, self.history)


# --- multi-GPU: in a child process ----------------------------------------------------------------
def _train_in_child(
    plan: Plan, train: pa.Table, validation: pa.Table, workdir: Path, loggers: Sequence, progress: bool
) -> TrainResult:
    """Write the job to workdir/ddp, run it under torchrun, and read back rank 0's result."""
    import pyarrow.parquet as pq

    job = workdir / DDP_JOB
    job.mkdir(parents=True, exist_ok=True)
    pq.write_table(train, job / "train.parquet")
    pq.write_table(validation, job / "validation.parquet")
    (job / "plan.json").write_text(plan.to_json())
    (job / "options.json").write_text(json.dumps({"progress": progress}))
    (workdir / RESULT).unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={plan.hardware.devices}",
        "-m",
        "rscale.models.launch",
        str(workdir),
    ]
    log_path = job / "train.log"
    tail: list[str] = []
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
        ) as child,
    ):
        assert child.stdout is not None
        for line in child.stdout:
            log.write(line)
            tail = (tail + [line])[-25:]
            if progress:
                sys.stdout.write(line)
        code = child.wait()
    if code != 0 or not (workdir / RESULT).exists():
        raise RscaleError(
            f"multi-GPU training ({plan.hardware.devices} processes, torchrun) failed with exit code {code}; "
            f"last output:\n{''.join(tail)}",
            fix=f"the whole log is {log_path}; try train.gpus=1 to rule out DDP itself",
        )
    result = TrainResult.model_validate_json((workdir / RESULT).read_text())
    for entry in result.history:  # the child had no loggers: replay its history into the caller's
        step = int(entry.get("epoch", 0))
        for logger in loggers:
            logger.log_metrics({k: v for k, v in entry.items() if k != "epoch"}, step=step)
    return result
