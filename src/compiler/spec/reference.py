"""The spec language described from its own models: a JSON Schema for editors and a Markdown reference
for people. Both are generated, committed, and tested to match, so neither can drift from the code."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from rscale.compiler.spec.root import SPEC_VERSION, Spec

SCHEMA_ID = "https://rscale.dev/schema/spec.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec: keys, types, descriptions, and enums filled from the registries."""
    schema = Spec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"rscale spec (spec_version {SPEC_VERSION})",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def markdown_reference() -> str:
    """Every key of the spec, with its type, default and description, one table per block."""
    out = [
        "# Spec reference",
        "",
        "<!-- Generated from the pydantic models in src/compiler/spec/ by `rs schema --docs`. Do not edit by hand;",
        "     tests/compiler/test_compiler_schema.py fails when this file and the models disagree. -->",
        "",
        f"A spec is one YAML file per use case, written for `spec_version: {SPEC_VERSION}`. Unknown keys are errors.",
        "Blocks with a `type`, `kind` or `tier` key are unions: that key picks the block's kind, and each kind",
        "has its own keys. Put `# yaml-language-server: $schema=../schema/spec.schema.json` at the top of a spec",
        "for completion and checks in editors.",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    _section(out, "", "", Spec, seen)
    return "\n".join(out).rstrip() + "\n"


def _section(out: list[str], path: str, tag: str, model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    out += [f"## `{path or '(top level)'}`" + (f" ({tag})" if tag else ""), ""]
    if model.__doc__ and model is not Spec:
        out += [" ".join(model.__doc__.split()), ""]
    out += ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[str, str, type[BaseModel]]] = []
    own_tag = _tag(model)
    for name, field in model.model_fields.items():
        key = field.alias or name
        default = _default(field)
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        if own_tag and own_tag[0] == key and not description:
            description = f"Picks this kind of `{path}`."
        out.append(f"| `{key}` | {_type(field.annotation, field.metadata)} | {default} | {description} |")
        for inner in _models_in(field.annotation):
            found = _tag(inner)
            label = f"{path}.{key}" if path else key
            nested.append((label, f"{found[0]}: {found[1]}" if found else tag, inner))
    out.append("")
    for label, inner_label, inner in nested:
        _section(out, label, inner_label, inner, seen)


def _tag(model: type[BaseModel]) -> tuple[str, Any] | None:
    for name in ("type", "kind", "tier"):
        field = model.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            args = typing.get_args(field.annotation)
            if len(args) == 1:
                return name, args[0]
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _type(annotation: Any, metadata: list[Any] | None = None) -> str:
    text = _type_name(annotation)
    bounds = []
    for item in metadata or []:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "length >="), ("pattern", "matches")):
            value = getattr(item, attr, None)
            if value is not None:
                bounds.append(f"{sign} `{value}`" if attr == "pattern" else f"{sign} {value}")
    return (text + (" (" + ", ".join(bounds) + ")" if bounds else "")).replace("|", "\\|")


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return _type(inner, [m for m in extra if not callable(getattr(m, "func", None))]).replace("\\|", "|")
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        tags = [_tag(m) for m in models]
        if models and all(tags) and len(models) == len([a for a in args if a is not type(None)]):
            return f"one of {len(models)} kinds, by `{tags[0][0]}`: " + ", ".join(f"`{t[1]}`" for t in tags if t)  # type: ignore[index]
        parts = [_type_name(a) for a in args if a is not type(None)]
        optional = " or null" if type(None) in args else ""
        return " or ".join(parts) + optional
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        key, value = typing.get_args(annotation) or (str, Any)
        return f"mapping of {_type_name(key)} to {_type_name(value)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        tag = _tag(annotation)
        return f"block ({tag[0]}: {tag[1]})" if tag else "block"
    if annotation is Any:
        return "any"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    if value is None:
        return "null"
    return "`" + json.dumps(value).replace("|", "\\|") + "`"
