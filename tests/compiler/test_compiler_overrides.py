"""Overrides: the Hydra parser API that overrides.py calls is pinned here, so a hydra-core change fails loudly."""

from __future__ import annotations

import pytest

from rscale.compiler.errors import SpecError
from rscale.compiler.overrides import apply, expand


def test_hydra_override_parser_api_is_what_overrides_py_calls() -> None:
    import hydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    assert hydra.__version__ == "1.3.8", "overrides.py is written against hydra-core 1.3.8's parser"
    parser = OverridesParser.create()
    (plain,) = parser.parse_overrides(["train.lr=1e-3"])
    assert plain.key_or_group == "train.lr" and plain.value() == 0.001
    assert not plain.is_delete() and not plain.is_sweep_override() and not plain.is_add() and not plain.is_force_add()
    (sweep,) = parser.parse_overrides(["model.dim=32,64"])
    assert sweep.is_sweep_override()
    assert list(sweep.sweep_iterator()) == [32, 64]
    assert list(sweep.sweep_string_iterator()) == ["32", "64"]
    (ranged,) = parser.parse_overrides(["train.seed=range(1,4)"])
    assert list(ranged.sweep_iterator()) == [1, 2, 3]
    (add,) = parser.parse_overrides(["+train.weight_decay=0.1"])
    assert add.is_add()
    (force,) = parser.parse_overrides(["++train.weight_decay=0.1"])
    assert force.is_force_add()
    (delete,) = parser.parse_overrides(["~train.early_stopping"])
    assert delete.is_delete()
    (listed,) = parser.parse_overrides(["model.hidden=[8,4]"])
    assert listed.value() == [8, 4]
    with pytest.raises(HydraException):
        parser.parse_overrides(["train.lr=[1"])


def test_sweep_expands_to_the_cartesian_product_in_order() -> None:
    members = expand(["train.lr=0.1,0.2", "model.dim=choice(32,64)", "train.seed=7"])
    assert [m.swept for m in members] == [
        (("train.lr", 0.1), ("model.dim", 32)),
        (("train.lr", 0.1), ("model.dim", 64)),
        (("train.lr", 0.2), ("model.dim", 32)),
        (("train.lr", 0.2), ("model.dim", 64)),
    ]
    assert members[0].texts == ["train.lr=0.1", "model.dim=32", "train.seed=7"]


def test_no_overrides_is_one_member_without_hydra() -> None:
    assert [m.overrides for m in expand([])] == [()]


def test_apply_sets_adds_deletes_and_records_origin() -> None:
    tree = {"train": {"lr": 0.1, "early_stopping": {"patience": 2}}, "model": {"hidden": [8, 4]}}
    (member,) = expand(["train.lr=0.5", "+train.seed=3", "~train.early_stopping", "model.hidden.1=2"])
    out, origin = apply(tree, member.overrides)
    assert out == {"train": {"lr": 0.5, "seed": 3}, "model": {"hidden": [8, 2]}}
    assert tree["train"]["lr"] == 0.1  # the input is not changed
    assert origin[("train", "seed")] == "+train.seed=3"


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        ("+train.lr=1", "cannot add a key that is already in the spec", "drop the `+`: train.lr=1"),
        ("~train.lrr", "cannot delete a key that is not in the spec", "did you mean `lr`?"),
        ("model.hidden.5=1", "index 5 is past the end of a list of 2", "use an index from 0 to 1"),
        ("train.lr.x=1", "`train.lr` is a value, not a section", None),
    ],
)
def test_apply_errors_name_the_override_and_a_fix(text: str, message: str, fix: str | None) -> None:
    tree = {"train": {"lr": 0.1}, "model": {"hidden": [8, 4]}}
    (member,) = expand([text])
    with pytest.raises(SpecError) as caught:
        apply(tree, member.overrides)
    (problem,) = caught.value.problems
    assert problem.message == message and problem.override == text
    if fix:
        assert fix in (problem.fix or "")


def test_unparsable_override_is_a_problem_naming_it() -> None:
    with pytest.raises(SpecError) as caught:
        expand(["train.lr=[1", "ok=1", "=3"])
    assert [p.override for p in caught.value.problems] == ["train.lr=[1", "=3"]
