"""The invalid-spec corpus: each file in tests/specs/invalid/ says, in leading comments, what it must produce.

    # expect: LINE:COL message text      (`-` for a problem that only an override names)
    # expect-fix: text in some problem's fix
    # overrides: key=value [key=value ...]
    # stack: NAME                        (default: local)

Every expected problem must be reported, with that line and column; every reported problem must have a
location. Compiled offline: the data contract has its own tests.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from rscale.compiler.compilation import compile_document
from rscale.compiler.errors import SpecError
from rscale.compiler.load import load_text

CORPUS = Path(__file__).resolve().parents[1] / "specs" / "invalid"
FILES = sorted(CORPUS.glob("*.yaml"))


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(":")
        if sep and key in ("expect", "expect-fix", "overrides", "stack"):
            out.setdefault(key, []).append(value.strip())
    return out


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_invalid_spec_reports_expected_problem(path: Path) -> None:
    text = path.read_text()
    want = _directives(text)
    assert want.get("expect"), f"{path.name} has no `# expect:` line"
    overrides = [o for line in want.get("overrides", []) for o in shlex.split(line)]
    stack = (want.get("stack") or ["local"])[0]
    with pytest.raises(SpecError) as caught:
        compile_document(load_text(text, path.name), overrides, stack=stack, offline=True)
    problems = caught.value.problems
    assert all(p.location is not None and p.location.file == path.name for p in problems)
    rendered = caught.value.render()
    for expect in want["expect"]:
        where, message = expect.split(" ", 1)
        matching = [p for p in problems if message in p.message]
        assert matching, f"no problem says {message!r}; got:\n{rendered}"
        seen = {f"{p.location.line}:{p.location.column}" if p.location and p.location.line else "-" for p in matching}
        assert where in seen, f"{message!r} reported at {seen}, expected {where}"
    for fix in want.get("expect-fix", []):
        assert any(p.fix and fix in p.fix for p in problems), f"no fix says {fix!r}; got:\n{rendered}"
    for line in want.get("overrides", []):
        for override in shlex.split(line):
            assert f"from override: {override}" in rendered or override in rendered
