"""Plan: the frozen, versioned, content-hashed IR that every stage receives, and `build/<name>/plan.json` shows.

A Plan holds everything a run needs, resolved against the stack: the SQL that will run on the selected
warehouse, compiled checks, the hardware the trainer gets, and the tracker and serving settings. Secret
references stay references; their values are read only at run time.
"""

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from rscale.compiler.errors import Problem, SpecError
from rscale.compiler.spec.base import Block
from rscale.compiler.spec.evaluate import EvaluateSpec
from rscale.compiler.spec.features import Feature, ResolvedFeatures
from rscale.compiler.spec.root import ModelSpec, ServingSpec, Spec, TrackerSpec
from rscale.compiler.spec.split import SplitSpec
from rscale.compiler.spec.train import TrainSpec
from rscale.compiler.stack import StackSpec

PLAN_VERSION = 1
HASH_EXCLUDES = {"hash", "spec_file", "overrides", "swept"}


class DataPlan(Block):
    warehouse: Literal["duckdb", "snowflake"]
    dialect: str
    source_sql: str = Field(description="The query as the spec wrote it.")
    sql: str = Field(description="The query that runs on the selected warehouse.")
    time_column: str | None = None
    warnings: tuple[str, ...] = ()


class CheckPlan(Block):
    name: str
    type: str
    severity: Literal["error", "warn"]
    value_sql: str
    sample_sql: str | None = None
    rule: dict[str, Any] = Field(default_factory=dict, description="min/max/max_age_hours/now as the check gives.")


class Hardware(Block):
    """What the Lightning Trainer gets, where the train step runs, and how training is launched there."""

    accelerator: Literal["cpu", "gpu"]
    devices: int
    strategy: Literal["auto", "ddp"]
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "64-true"]  # spec.train.precision's values
    runs_on: Literal["orchestrator", "step_operator"] = Field(
        description="`step_operator`: the train step runs on the stack's step operator (e.g. a SageMaker job)."
    )
    launcher: Literal["in_process", "subprocess"] = Field(
        description="`subprocess` for multi-GPU DDP, so DDP never re-executes the pipeline's process."
    )
    instance_type: str | None = None


class Plan(Block):
    plan_version: Literal[1] = 1  # PLAN_VERSION; a new IR shape is a new literal
    name: str
    spec_version: int
    spec_file: str
    overrides: tuple[str, ...] = ()
    swept: dict[str, Any] = Field(default_factory=dict)
    task: Literal["ranking", "classification", "regression"]
    stack: StackSpec
    data: DataPlan
    checks: tuple[CheckPlan, ...] = ()
    features: ResolvedFeatures
    split: SplitSpec
    model: ModelSpec
    train: TrainSpec
    hardware: Hardware
    evaluate: EvaluateSpec
    tracker: TrackerSpec
    serving: ServingSpec
    hash: str = ""

    def content_hash(self) -> str:
        body = self.model_dump(mode="json", exclude=HASH_EXCLUDES, by_alias=True)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True) + "\n"

    @classmethod
    def read(cls, path: str | Path) -> "Plan":
        plan = cls.model_validate_json(Path(path).read_text())
        if plan.hash != plan.content_hash():
            raise ValueError(f"{path} was edited after compiling (hash mismatch); run `rs compile` again")
        return plan

    def spec_tree(self) -> dict[str, Any]:
        """The fully resolved spec this plan came from, as a tree that validates back to the same plan."""
        return {
            "spec_version": self.spec_version,
            "name": self.name,
            "data": {
                "warehouse": "stack",  # the plan resolved it against this stack; the spec stays portable
                "dialect": self.data.dialect,
                "query": self.data.source_sql,
                **({"time_column": self.data.time_column} if self.data.time_column else {}),
            },
            "checks": self._check_trees,
            "features": self.features.model_dump(mode="json", exclude_none=True),
            "split": self.split.model_dump(mode="json", exclude_none=True),
            "model": self.model.model_dump(mode="json", exclude_none=True),
            "train": self.train.model_dump(mode="json", exclude_none=True),
            "evaluate": self.evaluate.model_dump(mode="json", exclude_none=True),
            "tracker": self.tracker.model_dump(mode="json", exclude_none=True),
            "serving": self.serving.model_dump(mode="json", exclude_none=True),
        }

    @property
    def _check_trees(self) -> list[dict[str, Any]]:
        return [dict(c.rule.get("spec", {})) for c in self.checks]


def hardware_for(spec: Spec, stack: StackSpec) -> Hardware:
    """Map `train.gpus` to Lightning's accelerator/devices/strategy and, on a step operator, an instance type."""
    gpus = spec.train.gpus
    instance = None
    if stack.step_operator is not None:
        instance = spec.train.instance_type or _instance_for(gpus, stack.step_operator.instance_types)
    elif stack.orchestrator.flavor == "sagemaker":
        instance = spec.train.instance_type or stack.orchestrator.instance_type
    return Hardware(
        accelerator="gpu" if gpus else "cpu",
        devices=max(gpus, 1),
        strategy="ddp" if gpus > 1 else "auto",
        precision=spec.train.precision,
        runs_on="step_operator" if stack.step_operator is not None else "orchestrator",
        launcher="subprocess" if gpus > 1 else "in_process",
        instance_type=instance,
    )


def _instance_for(gpus: int, table: dict[int, str]) -> str | None:
    """The smallest mapped instance with at least `gpus` GPUs."""
    fitting = sorted(n for n in table if n >= gpus)
    return table[fitting[0]] if fitting else None


def stack_problems(spec: Spec, stack: StackSpec) -> list[Problem]:
    """What the spec asks of the stack that the stack cannot give. Each names the stack and the fix."""
    from rscale.compiler.stack import available

    problems = []
    if spec.train.gpus > 0 and not stack.can_train_on_gpus():
        gpu_stacks = [n for n in available() if n != stack.name]
        problems.append(
            Problem(
                f"train.gpus is {spec.train.gpus}, but stack `{stack.name}` has no GPU-capable runner "
                "(no step operator, no SageMaker orchestrator, gpus: 0)",
                path=("train", "gpus"),
                fix="set train.gpus: 0 to train on the CPU, or use a stack with a SageMaker step operator"
                + (f" (e.g. --stack {gpu_stacks[0]})" if gpu_stacks else ""),
            )
        )
    elif 0 < stack.gpus < spec.train.gpus and stack.step_operator is None and stack.orchestrator.flavor == "local":
        problems.append(
            Problem(
                f"train.gpus is {spec.train.gpus}, but stack `{stack.name}` has {stack.gpus} GPU(s)",
                path=("train", "gpus"),
                fix=f"set train.gpus to at most {stack.gpus}",
            )
        )
    if stack.step_operator is not None and spec.train.gpus > max(stack.step_operator.instance_types):
        problems.append(
            Problem(
                f"no training instance in stack `{stack.name}` has {spec.train.gpus} GPUs "
                f"(largest mapped: {max(stack.step_operator.instance_types)})",
                path=("train", "gpus"),
                fix="lower train.gpus, set train.instance_type, or extend step_operator.instance_types",
            )
        )
    if spec.serving.tier not in stack.serving.tiers:
        from rscale.compiler.stack import load_stack

        able = []
        for name in available():
            try:
                if spec.serving.tier in load_stack(name).serving.tiers:
                    able.append(name)
            except SpecError:
                continue
        problems.append(
            Problem(
                f"serving tier `{spec.serving.tier}` cannot be deployed by stack `{stack.name}` "
                f"(it serves: {', '.join(stack.serving.tiers)})",
                path=("serving", "tier"),
                fix=(f"run with --stack {able[0]}" if able else "add a stack with SageMaker serving")
                + f", or set serving.tier to one of {', '.join(stack.serving.tiers)}",
            )
        )
    if spec.data.warehouse not in ("stack", stack.warehouse.kind):
        problems.append(
            Problem(
                f"data.warehouse is `{spec.data.warehouse}`, but stack `{stack.name}` has a {stack.warehouse.kind} warehouse",
                path=("data", "warehouse"),
                fix=f"set data.warehouse: stack (recommended) or use a stack with a {spec.data.warehouse} warehouse",
            )
        )
    return problems


def build_plan(
    spec: Spec,
    stack: StackSpec,
    *,
    spec_file: str,
    query: str,
    overrides: tuple[str, ...] = (),
    swept: dict[str, Any] | None = None,
) -> Plan:
    """Resolve a validated Spec against a stack into a Plan. Raises SpecError with the stack's problems.

    The spec's features must be resolved (typed) and its defaults filled in (`defaults.with_defaults`) first:
    inference from the warehouse happens in the compiler's driver, so the plan only ever holds a typed list.
    """
    from rscale.compiler.crossfield import task_of
    from rscale.compiler.defaults import with_defaults
    from rscale.compiler.sql import check_warnings, compile_check, transpile

    problems = stack_problems(spec, stack)
    if problems:
        raise SpecError(problems)
    if not spec.features.resolved:
        raise SpecError(
            [Problem("the features' types are not known yet", path=("features",), fix="compile with the data contract")]
        )
    spec = with_defaults(spec)
    assert spec.evaluate is not None and isinstance(spec.features.inputs, list)
    features = ResolvedFeatures(
        inputs=[f for f in spec.features.inputs if isinstance(f, Feature)],
        target=spec.features.target,  # type: ignore[arg-type]
        id=spec.features.id,
    )
    warehouse = stack.warehouse.kind
    try:
        transpiled = transpile(query, spec.data.dialect, warehouse)
    except ValueError as exc:
        raise SpecError([Problem(str(exc), path=("data", "query"), fix="fix the SQL, or set data.dialect")]) from None
    checks = []
    for index, check in enumerate(spec.checks):
        rule = {k: v for k, v in check.model_dump(mode="json").items() if k in ("min", "max", "max_age_hours", "now")}
        rule["spec"] = check.model_dump(mode="json", exclude_none=True)
        label = check.name or "_".join(
            [check.type, *(getattr(check, "columns", None) or [getattr(check, "column", None) or str(index)])]
        )
        checks.append(
            CheckPlan(
                name=label,
                type=check.type,
                severity=check.severity,
                rule=rule,
                **compile_check(check, transpiled.sql, warehouse, dialect=spec.data.dialect),  # type: ignore[arg-type]
            )
        )
    plan = Plan(
        name=spec.name,
        spec_version=spec.spec_version,
        spec_file=spec_file,
        overrides=overrides,
        swept=swept or {},
        task=task_of(spec),  # type: ignore[arg-type]
        stack=stack,
        data=DataPlan(
            warehouse=warehouse,
            dialect=spec.data.dialect,
            source_sql=query.strip(),
            sql=transpiled.sql,
            time_column=spec.data.time_column,
            warnings=transpiled.warnings
            + tuple(w for c in spec.checks for w in check_warnings(c, warehouse, dialect=spec.data.dialect)),
        ),
        checks=tuple(checks),
        features=features,
        split=spec.split,
        model=spec.model,
        train=spec.train,
        hardware=hardware_for(spec, stack),
        evaluate=spec.evaluate,
        tracker=spec.tracker,
        serving=spec.serving,
    )
    return plan.model_copy(update={"hash": plan.content_hash()})
