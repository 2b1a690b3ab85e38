"""Plain `key=number` overrides skip Hydra's parser (a faster `rs validate`), and give what Hydra gives."""

from __future__ import annotations

import pytest

from rscale.compiler.overrides import _plain, expand, hydra_expand


@pytest.mark.parametrize(
    "text",
    ["train.lr=0.01", "train.lr=1e-3", "train.lr=1.5E+2", "model.dim=64", "train.seed=0", "a=-0", "a=-12",
     "train.max_epochs=10", "a_b.c_d=0.0", "a=-3.25e-7"],
)
def test_a_plain_numeric_override_is_what_hydra_parses(text: str) -> None:
    (member,) = hydra_expand([text])
    assert _plain(text) is not None  # the fast path takes it
    assert expand([text]) == [member]
    assert [type(o.value) for o in expand([text])[0].overrides] == [type(member.overrides[0].value)]


@pytest.mark.parametrize(
    "text", ["a=007", "a=1_000", "a=+1", "a=.5", "a=1.", "a=inf", "a=true", "a=x", "a.0=1", "a = 1", "a=1,2", "+a=1", "~a"]
)
def test_anything_else_goes_to_hydra(text: str) -> None:
    assert _plain(text) is None
