"""Snapshots of the Plan for the example specs: any change to what a run receives shows up as a diff here.

Update on purpose with RS_UPDATE_SNAPSHOTS=1 pytest tests/compiler/test_compiler_snapshots.py, then review
the diff of tests/compiler/snapshots/*.json like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rscale.compiler.compilation import compile_document
from rscale.compiler.load import load_file
from rscale.compiler.plan import Plan

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


@pytest.mark.parametrize("name", ["recs", "conversion"])
def test_plan_matches_snapshot(name: str) -> None:
    doc = load_file(REPO / "specs" / f"{name}.yaml")
    (plan,) = compile_document(doc, stack="local", offline=True, spec_file=f"specs/{name}.yaml").plans
    got = json.loads(plan.to_json())
    snapshot = SNAPSHOTS / f"{name}.plan.json"
    if os.environ.get("RS_UPDATE_SNAPSHOTS") == "1" or not snapshot.exists():
        snapshot.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        if not os.environ.get("RS_UPDATE_SNAPSHOTS"):
            pytest.fail(f"wrote a new snapshot {snapshot.name}; review and commit it")
    want = json.loads(snapshot.read_text())
    assert got == want, f"the plan for {name} changed; if on purpose, rerun with RS_UPDATE_SNAPSHOTS=1 and review the diff"
    assert Plan.model_validate(want).content_hash() == want["hash"]


def test_plan_hash_ignores_where_it_came_from() -> None:
    doc = load_file(REPO / "specs" / "recs.yaml")
    a = compile_document(doc, offline=True, spec_file="a.yaml").plans[0]
    b = compile_document(doc, ["train.seed=7"], offline=True, spec_file="b.yaml").plans[0]  # 7 is the spec's own seed
    c = compile_document(doc, ["train.seed=8"], offline=True).plans[0]
    assert a.hash == b.hash != c.hash
