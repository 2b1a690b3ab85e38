"""The pipeline's steps and what each one's ZenML cache key depends on, read without importing ZenML.

ZenML 0.98 (`zenml/orchestrators/cache_utils.generate_cache_key`) keys a step run on: the project and the
artifact store, the step's import path and code, its parameters (`str(value)` of each), the ids (or, for
small records, the content hashes) of its input artifacts, its outputs' materializers and its environment.
A step is served from the cache when a completed run with the same key exists.

`rs plan` cannot compute ZenML's own key before a run (it needs ids ZenML assigns), so it computes a
*shadow key* from the same ingredients: the stack (for project and artifact store), the step's source
code, the value of each parameter as the pipeline passes it, and the shadow key of the step that
produced each input. Two runs have equal shadow keys exactly when ZenML's keys agree on these
ingredients. The steps, their parameters and inputs are read from `rscale/stages/pipeline.py` with `ast`,
so the prediction follows the pipeline when it changes.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from rscale.errors import RscaleError

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

PIPELINE_MODULE = "rscale.stages.pipeline"
PIPELINE_FUNCTION = "use_case_pipeline"
ORDERING_ONLY = {"after"}  # ZenML's `after=`: an upstream step to wait for, not an input of the cache key


@dataclass(frozen=True)
class StepCall:
    """One step invocation in the pipeline: its parameters (expressions over the pipeline's arguments) and
    its inputs (outputs of earlier steps)."""

    name: str
    source: str  # file:function, for messages
    params: dict[str, ast.expr]
    inputs: dict[str, tuple[str, int]]  # parameter -> (producing step, output index)
    cache: bool
    code: str  # digest of the step function's source, as ZenML's code hash covers it
    only_if: str | None = None  # a pipeline argument guarding the call (`deploy`)

    def param_path(self, param: str) -> tuple[str, ...] | None:
        """The plan keys a parameter passes (`plan.split` -> ("split",)), or None when it is not part of the plan."""
        node = self.params[param]
        if isinstance(node, ast.Call) and node.args:
            node = node.args[0]
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        return tuple(parts) if isinstance(node, ast.Name) and node.id == "plan" else None


@dataclass
class StepKey:
    """A step's shadow cache key and the parts it is made of (compared part by part to say why it changed)."""

    name: str
    key: str
    parts: dict[str, str] = field(default_factory=dict)


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _module_file(module: str) -> Path:
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        raise RscaleError(f"cannot find module {module}", fix="reinstall rscale (pip install -e .)")
    return Path(found.origin)


def _functions(path: Path) -> tuple[str, dict[str, ast.FunctionDef]]:
    text = path.read_text()
    tree = ast.parse(text)
    return text, {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _cache_enabled(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call):
            for keyword in decorator.keywords:
                if keyword.arg == "enable_cache" and isinstance(keyword.value, ast.Constant):
                    return bool(keyword.value.value)
    return True


@functools.lru_cache(maxsize=1)
def pipeline_steps() -> tuple[StepCall, ...]:
    """The steps of `use_case_pipeline`, in call order, read from its source."""
    path = _module_file(PIPELINE_MODULE)
    tree = ast.parse(path.read_text())
    imported = {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rscale.stages.")
        for alias in node.names
    }
    pipeline = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == PIPELINE_FUNCTION)
    outputs: dict[str, tuple[str, int]] = {}
    calls: list[StepCall] = []
    sources: dict[str, tuple[str, dict[str, ast.FunctionDef]]] = {}

    def visit(statements: list[ast.stmt], only_if: str | None) -> None:
        for statement in statements:
            if isinstance(statement, ast.If):
                guard = statement.test.id if isinstance(statement.test, ast.Name) else ast.unparse(statement.test)
                visit(statement.body, guard)
                continue
            value = getattr(statement, "value", None)
            if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in imported):
                continue
            name = value.func.id
            module = imported[name]
            if module not in sources:
                sources[module] = _functions(_module_file(module))
            text, functions = sources[module]
            function = functions[name]
            arg_names = [a.arg for a in function.args.args]
            given = dict(zip(arg_names, value.args, strict=False))
            given.update({k.arg: k.value for k in value.keywords if k.arg and k.arg not in ORDERING_ONLY})
            params: dict[str, ast.expr] = {}
            inputs: dict[str, tuple[str, int]] = {}
            for arg, node in given.items():
                if isinstance(node, ast.Name) and node.id in outputs:
                    inputs[arg] = outputs[node.id]
                else:
                    params[arg] = node
            segment = ast.get_source_segment(text, function, padded=True) or function.name
            decorators = "".join(ast.unparse(d) for d in function.decorator_list)
            calls.append(
                StepCall(
                    name=name,
                    source=f"{module.replace('rscale.', 'src/').replace('.', '/')}.py:{name}",
                    params=params,
                    inputs=inputs,
                    cache=_cache_enabled(function),
                    code=_digest(decorators + segment),
                    only_if=only_if,
                )
            )
            targets = statement.targets if isinstance(statement, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Tuple):
                    for index, element in enumerate(target.elts):
                        if isinstance(element, ast.Name):
                            outputs[element.id] = (name, index)
                elif isinstance(target, ast.Name):
                    outputs[target.id] = (name, 0)

    visit(pipeline.body, None)
    return tuple(calls)


def _evaluate(node: ast.expr, env: dict[str, Any]) -> Any:
    """The value of a step argument such as `plan.data.time_column` or `list(plan.checks)`."""
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    if isinstance(node, ast.Attribute):
        return getattr(_evaluate(node.value, env), node.attr)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "tuple") and node.args:
        return list(_evaluate(node.args[0], env))
    raise RscaleError(
        f"rs plan cannot read the step argument `{ast.unparse(node)}` in {PIPELINE_MODULE} (line {node.lineno})",
        fix="pass steps parts of the plan (plan.x.y), the fingerprint or outputs of earlier steps",
    )


def stack_identity(plan: Plan) -> str:
    """What stands for ZenML's project and artifact store in the key: the stack's name and artifact store."""
    return _digest({"stack": plan.stack.name, "artifact_store": _jsonable(plan.stack.artifact_store)})


def step_keys(plan: Plan, fingerprint: str | None, *, deploy: bool = True, resume: bool = False) -> dict[str, StepKey]:
    """Shadow cache keys of every step the plan's run would have. `fingerprint` None: the data is unknown,
    so every key that depends on it is marked unknown ("?")."""
    env = {"plan": plan, "fingerprint": fingerprint, "deploy": deploy, "resume": resume}
    keys: dict[str, StepKey] = {}
    stack = stack_identity(plan)
    for call in pipeline_steps():
        if call.only_if and not env.get(call.only_if, True):
            continue
        parts = {"code": call.code, "stack": stack}
        unknown = False
        for param, node in call.params.items():
            value = _evaluate(node, env)
            if value is None and isinstance(node, ast.Name) and node.id == "fingerprint":
                unknown = True
            parts[f"param:{param}"] = _digest(_jsonable(value))
        for param, (producer, index) in call.inputs.items():
            upstream = keys[producer].key
            unknown = unknown or upstream == "?"
            parts[f"input:{param}"] = f"{upstream}/{index}"
        keys[call.name] = StepKey(call.name, "?" if unknown else _digest([call.name, sorted(parts.items())]), parts)
    return keys


def call_of(name: str) -> StepCall:
    return next(c for c in pipeline_steps() if c.name == name)
