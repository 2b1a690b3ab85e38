"""Run records: what each finished run of a use case was keyed on, so `rs plan` can predict the next one.

`rs run` appends one JSON line per finished pipeline run to `.rs/runs/<name>.jsonl`: the full plan, the
data fingerprint, every step's shadow cache key (`rscale.planning.steps`) and ZenML's status for it
(`completed` or `cached`), the training speed measured on which hardware, and whether the model went to
production. A torn line (a crash mid-write) is skipped when read.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from rscale.paths import state_dir

if TYPE_CHECKING:
    from rscale.compiler.plan import Hardware, Plan
    from rscale.stages.artifacts import RunOutcome

KEEP_RUNS = 200  # older records are dropped when the file is rewritten


class StepRecord(BaseModel):
    key: str
    status: str
    parts: dict[str, str] = Field(default_factory=dict)
    zenml_cache_key: str | None = Field(None, description="ZenML's own key, to check the cache entry still exists.")


class TrainingRecord(BaseModel):
    """The speed a run measured and the hardware it measured it on (instance, accelerator x devices)."""

    hardware: str
    samples_per_second: float = 0.0
    train_rows: int = 0
    epochs_run: int = 0
    train_seconds: float = 0.0


class RunRecord(BaseModel):
    recorded: str
    run_id: str
    run_name: str
    plan_hash: str
    plan: dict[str, Any]
    fingerprint: str
    stack: str
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    training: TrainingRecord | None = None
    stage: str | None = None
    deployed: bool = False


def runs_file(name: str) -> Path:
    path = state_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{name}.jsonl"


def hardware_label(hardware: Hardware) -> str:
    """`ml.g5.12xlarge (gpu x4)` or `this machine (cpu x1)`: what a speed measurement is tied to."""
    where = hardware.instance_type or "this machine"
    return f"{where} ({hardware.accelerator} x{hardware.devices})"


def record_run(
    plan: Plan, fingerprint: str, run: Any, outcome: RunOutcome, *, deploy: bool = True, resume: bool = False
) -> RunRecord:
    """Append the record of a finished run (`run`: ZenML's pipeline run, `outcome`: rscale's RunOutcome)."""
    from rscale.planning.steps import step_keys

    keys = step_keys(plan, fingerprint, deploy=deploy, resume=resume)
    step_runs = run.steps  # each access of `run.steps` queries ZenML's store: once, not per use
    steps = {
        name: StepRecord(
            key=key.key,
            status=str(getattr(step_runs[name].status, "value", step_runs[name].status)),
            parts=key.parts,
            zenml_cache_key=getattr(step_runs[name], "cache_key", None),
        )
        for name, key in keys.items()
        if name in step_runs
    }
    training = outcome.training
    seconds = sum(float(h.get("train_seconds", 0.0)) for h in training.history)
    cached = steps.get("train_model") is not None and steps["train_model"].status == "cached"
    record = RunRecord(
        recorded=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        run_id=str(outcome.run_id),
        run_name=str(outcome.run_name),
        plan_hash=plan.hash,
        plan=plan.model_dump(mode="json", by_alias=True),
        fingerprint=fingerprint,
        stack=plan.stack.name,
        steps=steps,
        # a cached train step measured nothing now: its figures belong to the run that trained
        training=None if cached or not training.samples_per_second else TrainingRecord(
            hardware=hardware_label(plan.hardware),
            samples_per_second=training.samples_per_second,
            train_rows=training.train_rows,
            epochs_run=training.epochs_run,
            train_seconds=seconds,
        ),
        stage=outcome.registration.stage if outcome.registration is not None else None,
        deployed=outcome.deployment.deployed,
    )
    path = runs_file(plan.name)
    line = record.model_dump_json() + "\n"
    with path.open("a", encoding="utf-8") as out:  # one write per record: concurrent sweep members append whole lines
        out.write(line)
    if path.stat().st_size > 4_000_000:
        _trim(path)
    return record


def _trim(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[-KEEP_RUNS:]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)


def load_runs(name: str) -> list[RunRecord]:
    """Every recorded run of use case `name`, oldest first."""
    path = runs_file(name)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(RunRecord.model_validate_json(line))
        except ValueError:
            continue
    return records
