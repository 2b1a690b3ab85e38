"""Property: whatever is done to a valid spec, compiling gives a Plan or a clean SpecError whose problems all
have a location. Never another exception (a traceback would reach the user)."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rscale.compiler.compilation import Compiled, compile_document
from rscale.compiler.errors import SpecError
from rscale.compiler.load import load_text
from rscale.compiler.plan import Plan

REPO = Path(__file__).resolve().parents[2]
VALID = [(REPO / "specs" / f"{name}.yaml").read_text() for name in ("recs", "conversion")]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.sampled_from(["", "${env:X}", "local", "numeric", "sequence", "hit_rate@10", "auc", "tabular", "stack"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8)


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            out += _paths(value, (*prefix, index))
    return out


def _parent(tree: Any, path: tuple) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value] if depth % 2 else {"k": value}
    return value


@st.composite
def mutated_trees(draw: st.DrawFn) -> dict[str, Any]:
    tree = copy.deepcopy(load_text(draw(st.sampled_from(VALID))).tree)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(tree)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(tree, path)
        action = draw(st.sampled_from(["delete", "replace", "add", "deep", "huge"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(text)] = draw(values)
        elif action == "deep":
            parent[path[-1]] = _nested(draw(st.integers(1, 60)))
        elif action == "huge":
            parent[path[-1]] = draw(st.sampled_from([10**40, -(10**40), 1e308, "x" * 5000, list(range(2000))]))
    return tree


def _dump(tree: dict[str, Any]) -> str:
    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(tree, out)
    return out.getvalue()


def _compile_cleanly(text: str) -> None:
    try:
        compiled = compile_document(load_text(text, "fuzz.yaml"), offline=True)
    except SpecError as exc:
        assert exc.problems, "a SpecError must carry problems"
        for problem in exc.problems:
            assert problem.location is not None and problem.location.file == "fuzz.yaml", problem
            assert problem.message
        exc.render()  # rendering (snippets, carets) must not fail either
        return
    assert isinstance(compiled, Compiled) and compiled.plans
    assert all(isinstance(plan, Plan) and plan.hash for plan in compiled.plans)


@FUZZ
@given(mutated_trees())
def test_mutated_spec_compiles_or_fails_cleanly(tree: dict[str, Any]) -> None:
    _compile_cleanly(_dump(tree))


@FUZZ
@given(st.sampled_from(VALID), st.integers(0, 10_000), st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))
def test_text_edits_compile_or_fail_cleanly(spec: str, position: int, inserted: str) -> None:
    position %= len(spec)
    _compile_cleanly(spec[:position] + inserted + spec[position:])


@FUZZ
@given(st.lists(st.sampled_from(["train.lr", "model.dim", "+x", "~train", "features.inputs.0.type", "serving.tier", "data"]), min_size=1, max_size=3), st.lists(text, min_size=1, max_size=3))
def test_random_overrides_fail_cleanly(keys: list[str], raw: list[str]) -> None:
    overrides = [f"{key}={value}" if not key.startswith("~") else key for key, value in zip(keys, raw, strict=False)]
    try:
        compile_document(load_text(VALID[0], "fuzz.yaml"), overrides, offline=True)
    except SpecError as exc:
        assert all(p.location is not None for p in exc.problems)
