"""Validate: a plain tree -> a `Spec`, in two phases (field checks, then registered cross-field checks).

Every problem is collected and reported at once, each with its file:line:col, key path, the value seen,
what was expected and a fix. Literal secrets anywhere in the tree are errors, and are masked in every
message and snippet. Old spec versions are upgraded by registered hooks before validation.
"""

from __future__ import annotations

import copy
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from rscale.compiler.errors import Location, Problem, did_you_mean, dotted
from rscale.compiler.load import Document
from rscale.compiler.spec import SPEC_VERSION, Spec

Path_ = tuple[str | int, ...]
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]
UPGRADES: dict[int, Upgrade] = {}


def register_upgrade(from_version: int) -> Callable[[Upgrade], Upgrade]:
    """Register a transform from spec version N to N+1. Old specs are upgraded by these, never by branches."""

    def decorate(fn: Upgrade) -> Upgrade:
        UPGRADES[from_version] = fn
        return fn

    return decorate


def upgrade(tree: dict[str, Any]) -> dict[str, Any]:
    """Run the registered upgrade hooks from the tree's `spec_version` up to the current one (on a copy)."""
    version = tree.get("spec_version")
    if not (isinstance(version, int) and not isinstance(version, bool) and version < SPEC_VERSION):
        return tree
    tree = copy.deepcopy(tree)
    while isinstance(version, int) and version < SPEC_VERSION and version in UPGRADES:
        tree = UPGRADES[version](tree)
        version = tree["spec_version"] = version + 1
    return tree


def version_problems(tree: dict[str, Any]) -> list[Problem]:
    """A spec written for a version this rscale cannot read, or cannot upgrade."""
    if not isinstance(tree, dict):
        return []  # an empty file or a top level that is not a mapping: the field check says so
    version = tree.get("spec_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return []  # missing or not a number: the field check says so
    if version > SPEC_VERSION:
        return [
            Problem(
                f"this spec is written for spec language version {version}; this rscale reads versions up to {SPEC_VERSION}",
                path=("spec_version",),
                fix="upgrade rscale (pip install -U rscale), or write the spec for spec_version: 1",
            )
        ]
    # the first version on the way up with no upgrade; walked step by step, never a range from `version` (a
    # spec_version of -10**40 is a value a person can write, and a list of every version from it is not)
    first_missing = version
    while first_missing < SPEC_VERSION and first_missing in UPGRADES:
        first_missing += 1
    if first_missing < SPEC_VERSION:
        return [
            Problem(
                f"spec_version {version} is not supported (no upgrade from version {first_missing})",
                path=("spec_version",),
                fix=f"set spec_version: {SPEC_VERSION} and follow docs/spec-reference.md",
            )
        ]
    return []


def validate(doc: Document, tree: dict[str, Any] | None = None, origin: dict[Path_, str] | None = None) -> Spec:
    """Validate `tree` (the document's tree after overrides) and return the Spec, or raise every problem."""
    from rscale.compiler.crossfield import run_checks
    from rscale.compiler.spec.secrets import env_name_for, find_literal_secrets

    tree = doc.tree if tree is None else tree
    origin = origin or {}
    problems: list[Problem] = list(doc.problems)
    secret_paths: set[Path_] = set()
    for secret in find_literal_secrets(tree):
        doc.secrets.add(secret.value)
        secret_paths.add(secret.path)
        problems.append(
            Problem(
                f"{secret.what} is written into the spec; a secret must never be in a spec, plan or log",
                path=secret.path,
                fix=f"reference it instead: `${{env:{env_name_for(secret.path)}}}` (set the variable where rs runs) "
                "or `${secret:NAME}` (a secret of the stack)",
            )
        )
    versions = version_problems(tree)
    if versions:
        raise doc.error(_sorted([_locate(doc, origin, p) for p in problems + versions]))
    tree = upgrade(tree)
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(tree)
    except ValidationError as exc:
        field_problems = problems_from_errors(doc, tree, origin, exc.errors(include_url=False))
        problems += [p for p in field_problems if p.path not in secret_paths]
        # cross-field checks over the sections that did validate, so one run reports both kinds of mistake
        broken = {p.path[0] for p in field_problems if p.path} | {p.path[0] for p in problems if p.path}
        problems += [_locate(doc, origin, p) for p in run_checks(partial_spec(tree, broken), partial=True)]
    if spec is not None:
        problems += [_locate(doc, origin, p) for p in run_checks(spec)]
    problems = _dedupe([_locate(doc, origin, p) for p in problems])
    if any(p.severity == "error" for p in problems):
        raise doc.error(_sorted(problems))
    return spec  # type: ignore[return-value]


def partial_spec(tree: dict[str, Any], broken: set[Any]) -> Spec:
    """A Spec holding only the top-level sections that validate on their own; the others are left unset."""
    sections: dict[str, Any] = {}
    for name, field in Spec.model_fields.items():
        if name in broken:
            continue
        try:
            if name in tree:
                sections[name] = _section_adapter(name).validate_python(tree[name])
            elif not field.is_required():
                sections[name] = field.get_default(call_default_factory=True)
        except ValidationError:
            continue
    return Spec.model_construct(**sections)


@functools.cache
def _section_adapter(name: str) -> Any:
    """The validator (a pydantic TypeAdapter) of one top-level section of the spec, built once per process:
    building one costs more than validating with it, and only a spec with mistakes needs them."""
    from pydantic import TypeAdapter

    field = Spec.model_fields[name]
    return TypeAdapter(field.annotation if not field.metadata else Annotated[(field.annotation, *field.metadata)])


def problems_from_errors(
    doc: Document, tree: dict[str, Any], origin: dict[Path_, str], errors: list[Any], root: type[BaseModel] = Spec
) -> list[Problem]:
    """Turn pydantic's errors into Problems; a value that fits no member of a scalar union is one problem."""
    problems = [_problem(doc, tree, origin, error, root) for error in errors]
    by_path: dict[Path_, list[Problem]] = {}
    for problem in problems:
        by_path.setdefault(problem.path, []).append(problem)
    merged: list[Problem] = []
    for problem in problems:
        group = by_path[problem.path]
        if len(group) > 1 and all(p.message.startswith("expected ") for p in group):
            if problem is group[0]:
                expected = [p.message.removeprefix("expected ").split(", got ")[0] for p in group]
                seen = problem.message.split(", got ", 1)[1] if ", got " in problem.message else "something else"
                merged.append(replace(problem, message=f"expected {_or(expected)}, got {seen}"))
            continue
        merged.append(problem)
    # A missing key next to an unknown key that is a near miss for it is one mistake: keep the unknown key.
    near_misses = {(p.path[:-1], p.fix.split("`")[1]) for p in merged if p.fix and p.fix.startswith("did you mean `")}
    return _dedupe([p for p in merged if not (p.message.startswith("missing required key") and (p.path[:-1], str(p.path[-1])) in near_misses)])


def _sorted(problems: list[Problem]) -> list[Problem]:
    def key(p: Problem) -> tuple[int, int]:
        if p.location is None or p.location.line is None:
            return (10**9, 0)
        return (p.location.line, p.location.column or 0)

    return sorted(problems, key=key)


def locate(doc: Document, origin: dict[Path_, str], problem: Problem) -> Problem:
    """A problem found after validation (inference, defaults), placed like validation's own."""
    return _locate(doc, origin, problem)


def _locate(doc: Document, origin: dict[Path_, str], problem: Problem) -> Problem:
    """Fill in where a problem sits: its line in the file, or the override that set it."""
    override = problem.override or _override_for(origin, problem.path)
    location = problem.location
    if location is None or (override and location.file == doc.file):
        written = any(doc.has(problem.path[:end]) for end in range(len(problem.path), 0, -1))
        # A key only an override names has no line: the override string is where it comes from.
        location = doc.locate(problem.path) if written or not override else Location(doc.file)
    return replace(problem, location=location, override=override)


def _override_for(origin: dict[Path_, str], path: Path_) -> str | None:
    """The override that set `path`, one of its ancestors, or (for a section) something inside it."""
    for end in range(len(path), 0, -1):
        if tuple(path[:end]) in origin:
            return origin[tuple(path[:end])]
    inside = [text for set_path, text in origin.items() if path and tuple(set_path[: len(path)]) == tuple(path)]
    return ", ".join(inside) if inside else None


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        key = (p.path, p.message, p.location)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _or(items: list[str]) -> str:
    unique = list(dict.fromkeys(items))
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " or " + unique[-1]


# ---- one pydantic error -> one Problem -------------------------------------------------------------------

EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "finite_number": "a finite number",
    "int_parsing_size": "a whole number of reasonable size",
}
BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _problem(
    doc: Document, tree: dict[str, Any], origin: dict[Path_, str], error: Any, root: type[BaseModel] = Spec
) -> Problem:
    """One pydantic error as a Problem: where, the value seen, what was expected and how to fix it."""
    walk = _walk(tree, tuple(error["loc"]), root)
    path = walk.path
    kind, ctx = error["type"], error.get("ctx") or {}
    value = error.get("input")
    seen = show(value)
    fix: str | None = None
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        allowed = _keys_of(walk.owner)
        message = f"unknown key `{key}`"
        hint = did_you_mean(key, allowed)
        elsewhere = [] if hint else [p for p in _homes_of(key, root) if p != dotted(path[:-1])]
        if elsewhere:
            message += f" here (it belongs under `{elsewhere[0]}`)"
        fix = (hint + " " if hint else "") + (f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it")
    elif kind == "missing":
        key = str(path[-1]) if path else "?"
        message = f"missing required key `{key}`"
        where = f"under `{dotted(path[:-1])}`" if path[:-1] else "at the top level"
        example = f"{SPEC_VERSION}" if path == ("spec_version",) else _describe(walk.annotation)
        fix = f"add `{key}: {example}` {where}" if example else f"add `{key}:` {where}"
    elif kind in ("union_tag_invalid", "literal_error", "enum"):
        discriminator = str(ctx.get("discriminator", "")).strip("'\"")
        if kind == "union_tag_invalid" and discriminator:
            path = (*path, discriminator)
            value = ctx.get("tag", value)
        choices = _choices(walk.annotation) or _split_expected(str(ctx.get("expected_tags") or ctx.get("expected", "")))
        message = f"{show(value)} is not one of the allowed values"
        hint = did_you_mean(value, [str(c) for c in choices])
        fix = (hint + " " if hint else "") + f"allowed: {', '.join(map(str, choices))}"
    elif kind == "union_tag_not_found":
        discriminator = str(ctx.get("discriminator", "")).strip("'\"")
        choices = _choices(walk.annotation)
        message = f"missing `{discriminator}`, which picks the kind of `{dotted(path) or 'block'}`"
        fix = f"add `{discriminator}:` with one of: {', '.join(map(str, choices))}" if choices else None
    elif kind in EXPECTED:
        message = f"expected {EXPECTED[kind]}, got {seen}"
        fix = _fix_for_type(kind, value, walk)
    elif kind in BOUNDS:
        bound = next(iter(ctx.values()), "?")
        message = f"must be {BOUNDS[kind]} {bound}, got {seen}"
        fix = f"use a value {BOUNDS[kind]} {bound}" + (f" ({walk.description.rstrip('.')})" if walk.description else "")
    elif kind in ("too_short", "too_long"):
        size = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        message = f"needs {word} {size} item{'s' if size != 1 else ''}, got {ctx.get('actual_length', '?')}"
        fix = _field_description(walk)
    elif kind in ("string_too_short", "string_too_long"):
        message = f"{error['msg'].removeprefix('String ').lower()}, got {seen}"
    elif kind == "string_pattern_mismatch":
        message = f"{seen} is not a valid value here (it must match {ctx.get('pattern')})"
        fix = _field_description(walk)
    elif kind == "rs_value":  # our own validators: message and fix come in the context
        message = str(ctx.get("message") or error["msg"])
        fix = ctx.get("fix") or None
    else:
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if value is not None and not isinstance(value, (dict, list)) and "got" not in message:
            message += f" (got {seen})"
    return Problem(message, path=path, location=doc.locate(path), fix=fix, override=_override_for(origin, path))


def show(value: Any) -> str:
    """A value as a person reads it in an error: short, typed, never a whole query."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (int, float)):
        text = repr(value)
        return f"`{text if len(text) <= 24 else text[:20] + '...'}`"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"`{text}`".replace("\n", "\\n") if text else "an empty string"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _fix_for_type(kind: str, value: Any, walk: _Walk) -> str | None:
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        members = _members(walk.annotation)
        tag = _discriminator(members) if members else None
        if tag and isinstance(value, str) and value in _choices(walk.annotation):
            return f"write it as a mapping: `{{{tag}: {value}}}`"
        keys = _keys_of(_strip(walk.annotation))
        return f"write a mapping with keys from: {', '.join(keys)}" if keys else None
    if kind in ("list_type", "tuple_type"):
        args = typing.get_args(_strip(walk.annotation))
        item = _strip(args[0]) if args else None
        if _members(item) or (isinstance(item, type) and issubclass(item, BaseModel)):
            return f"write a list with one `- {_describe(item)}` line per item"
        return f"write a list, e.g. [{value}]" if isinstance(value, (str, int, float)) else "write a list: [a, b]"
    if kind in ("string_type",) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"quote it: \"{value}\""
    what = f"write {EXPECTED[kind]} here"
    return f"{what} ({walk.description.rstrip('.')})" if walk.description else what


def _field_description(walk: _Walk) -> str | None:
    return walk.description


def _split_expected(text: str) -> list[str]:
    return [c.strip().strip("'\"") for c in text.replace(" or ", ",").split(",") if c.strip()]


def _describe(annotation: Any) -> str:
    """A short placeholder for a missing value: `<string>`, `{type: ...}`, `[...]`."""
    ann = _strip(annotation)
    members = _members(ann)
    if members:
        tag = _discriminator(members)
        return f"{{{tag}: {'|'.join(map(str, _choices(ann)))}}}" if tag else "..."
    if typing.get_origin(ann) is typing.Literal:
        return "|".join(map(str, typing.get_args(ann)))
    if typing.get_origin(ann) in (list, tuple):
        return "[...]"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "{...}"
    return {str: "<string>", int: "<whole number>", float: "<number>", bool: "true|false"}.get(ann, "...")


# ---- pydantic's error location -> the YAML key path, and the schema at that path --------------------------


class _Walk(typing.NamedTuple):
    path: Path_  # the YAML key path (union tags dropped)
    owner: Any  # the model that owns the last key, if any
    annotation: Any  # the schema type at the path
    description: str | None


def _walk(tree: Any, loc: tuple[Any, ...], root: Any = Spec) -> _Walk:
    """Follow pydantic's `loc` through the tree and the schema together.

    Pydantic inserts a union member's tag (`autoscaling`, `row_count`, `str`) into the location; it is not a
    key in the YAML, so it is dropped, and the schema walk continues in that member. This resolves unknown
    keys inside union members, list items of unions and nested blocks to the model that owns them.
    """
    path: list[str | int] = []
    node: Any = tree
    ann: Any = root
    owner: Any = None
    description: str | None = None
    parts = list(loc)
    index = 0
    while index < len(parts):
        part = parts[index]
        index += 1
        ann = _strip(ann)
        members = _members(ann)
        if members is not None and isinstance(part, str) and _is_member_tag(members, part, node):
            ann = _pick(members, part, node)
            continue
        if part == "[key]":  # a dict key failed: the location already names it
            continue
        path.append(part)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            owner = ann
            field = _field(ann, part)
            ann = field.annotation if field is not None else None
            description = field.description if field is not None else None
        elif typing.get_origin(ann) in (list, tuple):
            ann = typing.get_args(ann)[0] if typing.get_args(ann) else None
        elif typing.get_origin(ann) is dict:
            args = typing.get_args(ann)
            ann = args[1] if len(args) == 2 else None
        else:
            ann = None
        if isinstance(node, dict):
            node = node.get(part) if part in node else node.get(str(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    owner_model = owner if isinstance(owner, type) and issubclass(owner, BaseModel) else None
    return _Walk(tuple(path), owner_model, ann, description)


def _strip(ann: Any) -> Any:
    """Drop Annotated wrappers and the None of Optional; a real union stays a union."""
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(members) == 1:
            return _strip(members[0])
        return typing.Union[tuple(members)]  # type: ignore[return-value]
    return ann


def _members(ann: Any) -> list[Any] | None:
    ann = _strip(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return [_strip(a) for a in typing.get_args(ann)]
    return None


def _discriminator(members: list[Any]) -> str | None:
    """The field every member declares as a one-value Literal (`type`, `kind`, `tier`)."""
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if not models or len(models) != len(members):
        return None
    for name in models[0].model_fields:
        if all(
            name in m.model_fields
            and typing.get_origin(_strip(m.model_fields[name].annotation)) is typing.Literal
            and len(typing.get_args(_strip(m.model_fields[name].annotation))) == 1
            for m in models
        ):
            return name
    return None


def _tag_of(model: Any, discriminator: str) -> Any:
    return typing.get_args(_strip(model.model_fields[discriminator].annotation))[0]


def _choices(ann: Any) -> list[Any]:
    """The values allowed at a Literal field, or the tags of a discriminated union."""
    ann = _strip(ann)
    if typing.get_origin(ann) is typing.Literal:
        return list(typing.get_args(ann))
    members = _members(ann)
    tag = _discriminator(members) if members else None
    if members and tag:
        return [_tag_of(m, tag) for m in members]
    return []


def _type_name(ann: Any) -> str:
    return getattr(ann, "__name__", None) or str(ann)


def _is_member_tag(members: list[Any], part: str, node: Any) -> bool:
    tag = _discriminator(members)
    if tag is not None:
        return part in {str(_tag_of(m, tag)) for m in members}
    return not (isinstance(node, dict) and part in node)  # smart-union member names: str, int, list[int], ...


def _pick(members: list[Any], part: str, node: Any) -> Any:
    tag = _discriminator(members)
    if tag is not None:
        return next(m for m in members if str(_tag_of(m, tag)) == part)
    for member in members:
        if _type_name(member) == part or str(member) == part:
            return member
    return typing.Union[tuple(members)]


def _field(model: type[BaseModel], key: Any) -> Any:
    if key in model.model_fields:
        return model.model_fields[key]
    return next((f for f in model.model_fields.values() if f.alias == key), None)


def _keys_of(model: Any) -> list[str]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(f.alias or name for name, f in model.model_fields.items())
    return []


def _homes_of(key: str, root: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted sections of the schema that have a key named `key` (for "it belongs under `train`")."""
    model = _strip(root)
    candidates = _members(model) or [model]
    homes: list[str] = []
    for candidate in candidates:
        if not (isinstance(candidate, type) and issubclass(candidate, BaseModel)) or depth > 4:
            continue
        if _field(candidate, key) is not None and prefix and prefix not in homes:
            homes.append(prefix)
        for name, field in candidate.model_fields.items():
            inner = _strip(field.annotation)
            if typing.get_origin(inner) in (list, tuple):
                continue
            homes += [h for h in _homes_of(key, inner, f"{prefix}.{name}" if prefix else name, depth + 1) if h not in homes]
    return homes

