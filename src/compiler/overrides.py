"""Overrides in Hydra's grammar: `key=value`, `+key=value`, `~key`, and sweeps (`a=1,2`, `range()`, `choice()`).

Parsing is Hydra's own parser (hydra-core is pinned, and a test pins the API used here). A sweep expands
to one override list per member, the cartesian product of the swept keys in the order given.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from typing import Any

from rscale.compiler.errors import Problem, SpecError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Override:
    """One concrete override: no sweep left in it."""

    text: str  # as the user would write it for this value, e.g. "train.lr=0.001"
    path: Path_
    action: str  # "set", "add", "force", "delete"
    value: Any = None


@dataclass(frozen=True)
class Member:
    """One sweep member: the concrete overrides that make it, and the swept keys' values."""

    overrides: tuple[Override, ...]
    swept: tuple[tuple[str, Any], ...] = ()

    @property
    def texts(self) -> list[str]:
        return [o.text for o in self.overrides]


def _path(key: str) -> Path_:
    return tuple(int(part) if part.isdigit() else part for part in key.split("."))


# `key=number` with a dotted key of plain names: the common override (train.lr=0.01), whose value is the int or
# float Hydra's grammar gives it (tests compare the two), parsed without building Hydra's ANTLR parser.
_PLAIN = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)=(?P<value>-?(?:0|[1-9][0-9]*)(?P<float>(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?))"
)


def _plain(text: str) -> Override | None:
    """The override `text` when it is a plain `key=number`; None when it needs Hydra's grammar."""
    found = _PLAIN.fullmatch(text)
    if found is None:
        return None
    value = float(found["value"]) if found["float"] else int(found["value"])
    return Override(text, _path(found["key"]), "set", value)


def expand(texts: list[str]) -> list[Member]:
    """Parse override strings and expand sweeps into members. A parse error names the override string."""
    if not texts:
        return [Member(())]  # no Hydra import on the common path: `rs validate` stays fast
    plain = [_plain(text) for text in texts]
    if all(override is not None for override in plain):
        return [Member(tuple(o for o in plain if o is not None))]  # nothing to sweep: one member, as Hydra's
    return hydra_expand(texts)


def hydra_expand(texts: list[str]) -> list[Member]:
    """`expand` with Hydra's parser for every override (any of Hydra's grammar: `+`, `~`, sweeps, strings)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    axes: list[list[tuple[Override, tuple[str, Any] | None]]] = []
    problems = []
    for text in texts:
        try:
            (parsed,) = parser.parse_overrides([text])
        except HydraException as exc:
            problems.append(
                Problem(
                    f"cannot parse override: {str(exc).splitlines()[0]}",
                    override=text,
                    fix="write key=value, +key=value to add, ~key to delete, key=a,b or key=range(1,5) to sweep",
                )
            )
            continue
        key = parsed.key_or_group
        if not key:
            problems.append(Problem("an override needs a key before `=`", override=text, fix="write key=value, e.g. train.lr=0.001"))
            continue
        path = _path(key)
        if parsed.is_delete():
            axes.append([(Override(text, path, "delete"), None)])
        elif parsed.is_sweep_override():
            values = list(parsed.sweep_iterator())
            shown = list(parsed.sweep_string_iterator())
            action = "add" if parsed.is_add() else "force" if parsed.is_force_add() else "set"
            prefix = "+" if action == "add" else "++" if action == "force" else ""
            axes.append(
                [(Override(f"{prefix}{key}={s}", path, action, v), (key, v)) for v, s in zip(values, shown, strict=True)]
            )
        else:
            action = "add" if parsed.is_add() else "force" if parsed.is_force_add() else "set"
            axes.append([(Override(text, path, action, parsed.value()), None)])
    if problems:
        raise SpecError(problems)
    members = []
    for combo in itertools.product(*axes) if axes else [()]:
        members.append(
            Member(tuple(o for o, _ in combo), tuple(swept for _, swept in combo if swept is not None))
        )
    return members


def apply(tree: dict[str, Any], overrides: tuple[Override, ...] | list[Override]) -> tuple[dict[str, Any], dict[Path_, str]]:
    """Apply concrete overrides to a copy of the tree. Returns the tree and which override set each path."""
    out = copy.deepcopy(tree)
    origin: dict[Path_, str] = {}
    problems = []
    for override in overrides:
        try:
            _apply_one(out, override)
            origin[override.path] = override.text
        except _OverrideError as exc:
            problems.append(Problem(str(exc), path=override.path, override=override.text, fix=exc.fix))
    if problems:
        raise SpecError(problems)
    return out, origin


class _OverrideError(Exception):
    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def _apply_one(tree: dict[str, Any], override: Override) -> None:
    *parents, last = override.path
    node: Any = tree
    for depth, part in enumerate(parents):
        if not isinstance(node, (dict, list)):
            raise _OverrideError(f"`{'.'.join(map(str, override.path[:depth]))}` is a value, not a section")
        if _has(node, part):
            node = node[part]  # type: ignore[index]  # _has checked the key's type against the node
            continue
        if override.action == "delete" or isinstance(node, list):
            raise _OverrideError(
                f"`{'.'.join(map(str, override.path[: depth + 1]))}` does not exist", fix=_siblings_fix(node, part)
            )
        node[part] = {}
        node = node[part]
    exists = _has(node, last)
    if override.action == "delete":
        if not exists:
            raise _OverrideError("cannot delete a key that is not in the spec", fix=_siblings_fix(node, last))
        del node[last]
    elif override.action == "add" and exists:
        raise _OverrideError(
            "cannot add a key that is already in the spec",
            fix=f"drop the `+`: {override.text.lstrip('+')}",
        )
    else:
        if isinstance(node, list):
            if not exists:
                raise _OverrideError(
                    f"index {last} is past the end of a list of {len(node)}", fix=_siblings_fix(node, last)
                )
        elif not isinstance(node, dict):
            raise _OverrideError(f"`{'.'.join(map(str, override.path[:-1]))}` is a value, not a section")
        node[last] = override.value


def _siblings_fix(node: Any, key: str | int) -> str | None:
    """What the override could have meant: a near-miss key in the same section, or the list's index range."""
    from rscale.compiler.errors import did_you_mean

    if isinstance(node, list):
        return f"use an index from 0 to {len(node) - 1}" if node else "the list is empty here"
    if isinstance(node, dict):
        keys = [str(k) for k in node]
        hint = did_you_mean(key, keys)
        return (hint + " " if hint else "") + (f"keys here: {', '.join(keys)}" if keys else "")
    return None


def _has(node: Any, key: str | int) -> bool:
    if isinstance(node, dict):
        return key in node
    if isinstance(node, list) and isinstance(key, int):
        return 0 <= key < len(node)
    return False
