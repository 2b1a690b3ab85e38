"""Validate: a plain tree -> a `Spec`, in two phases (field checks, then registered cross-field checks).

Every problem is collected and reported at once, each with its file:line:col, key path and a fix.
"""

from __future__ import annotations

import typing
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ValidationError

from rscale.compiler.errors import Problem, SpecError, did_you_mean
from rscale.compiler.load import Document
from rscale.compiler.spec import SPEC_VERSION, Spec

Path_ = tuple[str | int, ...]
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def register_upgrade(from_version: int) -> Callable[[Callable[[dict[str, Any]], dict[str, Any]]], Any]:
    """Register a transform from spec version N to N+1. Old specs are upgraded by these, never by branches."""

    def decorate(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        UPGRADES[from_version] = fn
        return fn

    return decorate


def upgrade(tree: dict[str, Any]) -> dict[str, Any]:
    version = tree.get("spec_version")
    while isinstance(version, int) and version < SPEC_VERSION and version in UPGRADES:
        tree = UPGRADES[version](tree)
        version = tree["spec_version"] = version + 1
    return tree


def validate(doc: Document, tree: dict[str, Any] | None = None, origin: dict[Path_, str] | None = None) -> Spec:
    """Validate `tree` (the document's tree after overrides) and return the Spec, or raise every problem."""
    from rscale.compiler.crossfield import run_checks

    tree = upgrade(doc.tree if tree is None else tree)
    origin = origin or {}
    try:
        spec = Spec.model_validate(tree)
    except ValidationError as exc:
        problems = [_problem(doc, tree, origin, error) for error in exc.errors(include_url=False)]
        raise SpecError(_dedupe(problems), {doc.file: doc.text}) from None
    problems = [_locate(doc, origin, p) for p in run_checks(spec)]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise SpecError(problems, {doc.file: doc.text})
    return spec


def _locate(doc: Document, origin: dict[Path_, str], problem: Problem) -> Problem:
    """Fill in where a problem sits: its line in the file, or the override that set it."""
    from dataclasses import replace

    override = _override_for(origin, problem.path)
    return replace(problem, location=problem.location or doc.locate(problem.path), override=problem.override or override)


def _override_for(origin: dict[Path_, str], path: Path_) -> str | None:
    for end in range(len(path), 0, -1):
        if tuple(path[:end]) in origin:
            return origin[tuple(path[:end])]
    return None


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        key = (p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _problem(
    doc: Document, tree: dict[str, Any], origin: dict[Path_, str], error: Any, root: type[BaseModel] = Spec
) -> Problem:
    path, model = _tree_path(tree, error["loc"], root)
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    fix = None
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = sorted(model.model_fields) if model else []
        message = f"unknown key `{key}`"
        hint = did_you_mean(key, allowed)
        fix = (hint + " " if hint else "") + (f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it")
    elif kind == "missing":
        message = f"missing required key `{path[-1]}`"
        fix = f"add `{path[-1]}:` under `{'.'.join(map(str, path[:-1])) or 'the top level'}`"
    elif kind in ("union_tag_invalid", "literal_error"):
        expected = ctx.get("expected_tags") or ctx.get("expected", "")
        choices = [c.strip().strip("'\"") for c in str(expected).replace(" or ", ",").split(",") if c.strip()]
        seen = ctx.get("tag", value)
        message = f"`{seen}` is not one of the allowed values"
        hint = did_you_mean(seen, choices)
        fix = (hint + " " if hint else "") + f"allowed: {', '.join(choices)}"
    elif kind == "union_tag_not_found":
        message = f"missing `{ctx.get('discriminator', '').strip(chr(39))}`, which picks the kind of block"
        fix = _union_choices(path)
    else:
        message = error["msg"].removeprefix("Value error, ")
        if value is not None and not isinstance(value, (dict, list)):
            message += f" (got {value!r})"
    return Problem(message, path=path, location=doc.locate(path), fix=fix, override=_override_for(origin, path))


def _union_choices(path: Path_) -> str | None:
    from rscale.compiler.spec.model import MODELS
    from rscale.compiler.spec.serving import SERVING
    from rscale.compiler.spec.tracker import TRACKERS

    family = {"model": MODELS, "tracker": TRACKERS, "serving": SERVING}.get(str(path[0])) if path else None
    if family is None:
        return None
    return f"add `{family.key}:` with one of: {', '.join(family.names())}"


def _tree_path(tree: Any, loc: tuple[Any, ...], root: type[BaseModel] = Spec) -> tuple[Path_, type[BaseModel] | None]:
    """Map pydantic's error location to the YAML key path, dropping union tags.

    Also returns the model that owns the last key (for "allowed keys here" and "did you mean").
    """
    path: list[str | int] = []
    node: Any = tree
    model: Any = root
    owner: Any = root
    for part in loc:
        if isinstance(node, dict) and part not in node and isinstance(part, str):
            tag_model = _union_member(model, part)
            if tag_model is not None:
                model = tag_model
                continue
        path.append(part)
        owner = model
        model = _field_model(model, part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    if isinstance(owner, list) and isinstance(node, dict):
        owner = next((m for m in owner if all(k in m.model_fields for k in node if k != path[-1])), owner[0])
    owner_model = owner if isinstance(owner, type) and issubclass(owner, BaseModel) else None
    return tuple(path), owner_model


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return [m for a in typing.get_args(annotation) for m in _unwrap(a)]
    if origin in (list, tuple):
        return _unwrap(typing.get_args(annotation)[0])
    return [annotation]


def _field_model(model: Any, part: Any) -> Any:
    """The model (or list of candidate models) a field of `model` holds."""
    if isinstance(part, int):
        return model  # list item: same candidates as the list
    candidates = model if isinstance(model, list) else [model]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and part in candidate.model_fields:
            inner = [m for m in _unwrap(candidate.model_fields[part].annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
            if len(inner) == 1:
                return inner[0]
            return inner or None
    return None


def _union_member(model: Any, tag: str) -> Any:
    for candidate in model if isinstance(model, list) else []:
        for field in candidate.model_fields.values():
            if typing.get_origin(field.annotation) is typing.Literal and typing.get_args(field.annotation) == (tag,):
                return candidate
    return None


def problems_of(fn: Callable[[], Any]) -> Iterable[Problem]:
    """Run `fn`, returning its SpecError's problems (for tests and sweeps that collect across members)."""
    try:
        fn()
    except SpecError as exc:
        return exc.problems
    return []
