"""Cross-field checks: rules that span sections, registered one function each (Ludwig's pattern).

Each check takes the validated Spec and yields Problems with the key path they concern; validate fills
in file, line and column. Stack-dependent checks live in `plan`, where the stack is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rscale.compiler.errors import Problem, did_you_mean
from rscale.compiler.spec import Spec
from rscale.compiler.spec.evaluate import BASELINES, EvaluateSpec, baseline_tasks, metric_task
from rscale.compiler.spec.features import Feature
from rscale.compiler.spec.model import MODELS
from rscale.compiler.spec.tasks import metric_names

CheckFn = Callable[[Spec], Iterator[Problem]]
CHECKS: list[CheckFn] = []


def register_check(fn: CheckFn) -> CheckFn:
    CHECKS.append(fn)
    return fn


def run_checks(spec: Spec, partial: bool = False) -> list[Problem]:
    """Every registered check's problems. On a `partial` spec, a check that reads a missing section is skipped,
    as is (always) one that needs feature types or the evaluate section before inference and defaults."""
    problems: list[Problem] = []
    for check in CHECKS:
        try:
            problems.extend(check(spec))
        except Unresolved:
            continue  # the compiler runs the checks again once inference and defaults have filled it in
        except AttributeError:
            if not partial:
                raise
    return problems


class Unresolved(Exception):
    """A check read a feature type or a default that only inference (with the warehouse) fills in."""


def typed_inputs(spec: Spec) -> list[Feature]:
    """The inputs with their types; Unresolved while `inputs: all` or a bare name awaits inference."""
    inputs = spec.features.inputs
    if not isinstance(inputs, list) or not all(isinstance(f, Feature) for f in inputs):
        raise Unresolved("features.inputs")
    return [f for f in inputs if isinstance(f, Feature)]


def typed_target(spec: Spec) -> Feature:
    target = spec.features.target
    if not isinstance(target, Feature):
        raise Unresolved("features.target")
    return target


def evaluate_of(spec: Spec) -> EvaluateSpec:
    if spec.evaluate is None:
        raise Unresolved("evaluate")
    return spec.evaluate


def task_of(spec: Spec) -> str:
    """The learning task the spec describes: ranking, classification or regression, as the model's
    registration declares it for this target (`ModelConfig.task_for`)."""
    model = spec.model
    return model.fixed_task() or model.task_for(typed_target(spec).type)


@register_check
def attention_heads_divide_dim(spec: Spec) -> Iterator[Problem]:
    model = spec.model
    if model.type == "session_rec" and model.encoder == "sasrec" and model.dim % model.heads:
        fits = [h for h in range(1, 17) if model.dim % h == 0]
        yield Problem(
            f"model.dim {model.dim} does not divide into {model.heads} attention heads",
            path=("model", "heads"),
            fix=f"use heads in {', '.join(map(str, fits))}, or a dim that is a multiple of {model.heads}",
        )


@register_check
def target_is_not_an_input(spec: Spec) -> Iterator[Problem]:
    for index, feature in enumerate(typed_inputs(spec)):
        if feature.name == typed_target(spec).name:
            yield Problem(
                f"`{feature.name}` is both an input and the target: the model would see the answer",
                path=("features", "inputs", index, "name"),
                fix=f"remove `{feature.name}` from features.inputs",
            )


@register_check
def feature_names_are_unique(spec: Spec) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, feature in enumerate(typed_inputs(spec)):
        if feature.name in seen:
            yield Problem(f"input `{feature.name}` is listed twice", path=("features", "inputs", index, "name"))
        seen.add(feature.name)


@register_check
def model_fits_features(spec: Spec) -> Iterator[Problem]:
    """The inputs and target the model declared at registration (`ModelConfig.input_types`, ...)."""
    model = spec.model
    inputs = typed_inputs(spec)
    if model.input_types is not None and model.single_input:
        if [f.type for f in inputs] != [model.input_types[0]]:
            yield Problem(
                f"a {model.type} model reads exactly one input of type `{model.input_types[0]}`{model.input_note}",
                path=("features", "inputs"),
                fix=model.input_fix,
            )
    elif model.input_types is not None:
        for index, feature in enumerate(inputs):
            if feature.type not in model.input_types:
                yield Problem(
                    f"a {model.type} model cannot read `{feature.type}` input `{feature.name}`",
                    path=("features", "inputs", index, "type"),
                    fix=f"use {_either(list(model.input_types))} inputs{_readers(feature.type)}",
                )
    if model.target_types is not None and typed_target(spec).type not in model.target_types:
        yield Problem(
            f"a {model.type} model {model.target_note}, so the target must be {_either([f'`{t}`' for t in model.target_types])}",
            path=("features", "target", "type"),
            fix=f"set features.target.type: {model.target_types[0]}",
        )


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _readers(feature_type: str) -> str:
    """", or the `x` / `y` model": the registered models that declare they read this input type."""
    readers = [
        name for name in MODELS.names()
        if feature_type in (MODELS.entry(name).config.input_types or ())  # type: ignore[attr-defined]
    ]
    return f", or the {' / '.join(f'`{name}`' for name in readers)} model" if readers else ""


@register_check
def metrics_fit_task(spec: Spec) -> Iterator[Problem]:
    task = task_of(spec)
    for index, metric in enumerate(evaluate_of(spec).metrics):
        if metric_task(metric) != task:
            yield Problem(
                f"metric `{metric}` is a {metric_task(metric)} metric, but this spec is a {task} task",
                path=("evaluate", "metrics", index),
                fix=_metrics_for(task),
            )


def _metrics_for(task: str) -> str:
    """The metrics the task's registered kinds declare (`spec.tasks.TASKS`)."""
    return f"use {_either(metric_names(task))}"


@register_check
def baseline_fits_task(spec: Spec) -> Iterator[Problem]:
    """Each named baseline declares the tasks it fits where it registers (`evaluate.BASELINES`)."""
    baseline = evaluate_of(spec).baseline
    if baseline is None:
        return
    task = task_of(spec)
    listed = isinstance(baseline, list)
    for index, name in enumerate(baseline if isinstance(baseline, list) else [baseline]):
        if name == "none" or task in baseline_tasks(name):
            continue
        fits = [other for other in BASELINES.names() if task in baseline_tasks(other)]
        yield Problem(
            f"baseline `{name}` is for {' and '.join(baseline_tasks(name))} tasks, but this spec is a {task} task",
            path=("evaluate", "baseline", index) if listed else ("evaluate", "baseline"),
            fix=f"use one or a list of: {', '.join(fits)}; leave evaluate.baseline out for all of them, or none",
        )


@register_check
def gate_metric_is_evaluated(spec: Spec) -> Iterator[Problem]:
    gate = evaluate_of(spec).gate
    if gate is None:
        return
    if gate.metric not in evaluate_of(spec).metrics:
        hint = did_you_mean(gate.metric, evaluate_of(spec).metrics)
        yield Problem(
            f"the gate compares `{gate.metric}`, which is not in evaluate.metrics",
            path=("evaluate", "gate", "metric"),
            fix=(hint + " " if hint else "") + f"use one of: {', '.join(evaluate_of(spec).metrics)}",
        )
    if evaluate_of(spec).baseline_is_none:
        yield Problem(
            "a gate needs a baseline to compare against",
            path=("evaluate", "baseline"),
            fix="leave evaluate.baseline out (the task's default baselines) or name one, or remove evaluate.gate",
        )


@register_check
def ranking_metric_within_top_k(spec: Spec) -> Iterator[Problem]:
    top_k = getattr(spec.model, "top_k", None)  # a model that returns a fixed number of items declares it
    if top_k is None:
        return
    for index, metric in enumerate(evaluate_of(spec).metrics):
        if "@" in metric and int(metric.split("@")[1]) > top_k:
            yield Problem(
                f"`{metric}` looks at more items than the model returns (model.top_k = {top_k})",
                path=("evaluate", "metrics", index),
                fix=f"raise model.top_k to {metric.split('@')[1]} or lower K",
            )


@register_check
def split_has_a_column(spec: Spec) -> Iterator[Problem]:
    split = spec.split
    if split.by == "key" and not split.column:
        yield Problem("a key split needs `split.column`", path=("split", "column"), fix="name the key column")
    if split.by == "time" and not (split.column or spec.data.time_column):
        yield Problem(
            "a time split needs a time column",
            path=("split", "by"),
            fix="set data.time_column (or split.column) to a TIMESTAMP column, or use split.by: random "
            "(leaving `split` out splits at random when there is no time column)",
        )


@register_check
def exclude_goes_with_all(spec: Spec) -> Iterator[Problem]:
    features = spec.features
    if features.exclude and features.inputs != "all":
        yield Problem(
            "features.exclude only applies to `inputs: all`",
            path=("features", "exclude"),
            fix="remove the excluded columns from features.inputs and drop `exclude`, or set `inputs: all`",
        )
    if isinstance(features.inputs, list) and not features.inputs:
        yield Problem(
            "features.inputs is an empty list",
            path=("features", "inputs"),
            fix="list the columns the model reads, or write `inputs: all` (every column but the id and target)",
        )


@register_check
def early_stopping_monitors_a_logged_metric(spec: Spec) -> Iterator[Problem]:
    stop = spec.train.early_stopping
    if stop is None or stop.monitor is None:
        return
    logged = {"val_loss"} | {f"val_{m.replace('@', '_at_')}" for m in evaluate_of(spec).metrics}
    if stop.monitor not in logged:
        hint = did_you_mean(stop.monitor, sorted(logged))
        yield Problem(
            f"early stopping monitors `{stop.monitor}`, which training does not log",
            path=("train", "early_stopping", "monitor"),
            fix=(hint + " " if hint else "") + f"logged: {', '.join(sorted(logged))}",
        )


@register_check
def serverless_limits(spec: Spec) -> Iterator[Problem]:
    serving = spec.serving
    if serving.tier != "serverless":
        return
    if not (1024 <= serving.memory_mb <= 6144) or serving.memory_mb % 1024:
        yield Problem(
            f"serverless memory must be 1024 to 6144 MB in steps of 1024 (got {serving.memory_mb})",
            path=("serving", "memory_mb"),
            fix="use one of 1024, 2048, 3072, 4096, 5120, 6144",
        )
    if not 1 <= serving.max_concurrency <= 200:
        yield Problem(
            f"serverless max_concurrency must be 1 to 200 (got {serving.max_concurrency})",
            path=("serving", "max_concurrency"),
            fix="use a value from 1 to 200 (SageMaker's limit per serverless endpoint)",
        )
    provisioned = serving.provisioned_concurrency
    if provisioned is not None and not 1 <= provisioned <= min(200, serving.max_concurrency):
        yield Problem(
            f"provisioned_concurrency must be 1 to max_concurrency ({serving.max_concurrency}) (got {provisioned})",
            path=("serving", "provisioned_concurrency"),
            fix=f"use a value from 1 to {min(200, serving.max_concurrency)}, or remove provisioned_concurrency",
        )


@register_check
def autoscaling_bounds(spec: Spec) -> Iterator[Problem]:
    serving = spec.serving
    if serving.tier == "autoscaling" and serving.min_instances > serving.max_instances:
        yield Problem(
            f"min_instances ({serving.min_instances}) is above max_instances ({serving.max_instances})",
            path=("serving", "min_instances"),
            fix="make min_instances <= max_instances",
        )


@register_check
def custom_tier_has_an_image(spec: Spec) -> Iterator[Problem]:
    serving = spec.serving
    if serving.tier != "custom":
        return
    if serving.image is None and serving.build is None:
        yield Problem(
            "a custom serving tier needs a container: an `image` URI or a `build` context",
            path=("serving",),
            fix="add `image: <registry>/<repo>:<tag>`, or `build: {}` to generate a Dockerfile from python:3.11-slim",
        )
    elif serving.image is not None and serving.build is not None:
        yield Problem(
            "a custom serving tier takes an `image` or a `build` context, not both",
            path=("serving", "build"),
            fix="remove `build` to use the image as is, or remove `image` to build one",
        )


@register_check
def id_is_not_an_input(spec: Spec) -> Iterator[Problem]:
    key = spec.features.id
    if key is None:
        return
    for index, feature in enumerate(typed_inputs(spec)):
        if feature.name == key:
            yield Problem(
                f"`{key}` is the id column and also an input: an id identifies rows, the model must not learn it",
                path=("features", "inputs", index, "name"),
                fix=f"remove `{key}` from features.inputs",
            )
    if key == typed_target(spec).name:
        yield Problem(
            f"`{key}` is both the id column and the target",
            path=("features", "id"),
            fix="set features.id to a key column, or remove it",
        )


@register_check
def multi_gpu_precision(spec: Spec) -> Iterator[Problem]:
    if spec.train.gpus == 0 and spec.train.precision == "16-mixed":
        yield Problem(
            "16-mixed precision needs a GPU; on the CPU use 32-true or bf16-mixed",
            path=("train", "precision"),
            fix="set train.precision: 32-true, or train.gpus: 1",
        )
