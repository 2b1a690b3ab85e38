"""Spec errors: each says where (file:line:col and key path), what (seen vs expected) and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"


@dataclass(frozen=True)
class Problem:
    """One mistake in a spec, an override or the data it reads."""

    message: str
    path: tuple[str | int, ...] = ()
    location: Location | None = None
    fix: str | None = None
    override: str | None = None  # the override string that caused it
    severity: str = "error"  # or "warning"

    @property
    def dotted(self) -> str:
        return dotted(self.path)

    def render(self, snippet: str | None = None) -> str:
        where = str(self.location) if self.location else "<spec>"
        head = f"{where}: {self.severity}"
        if self.path:
            head += f" at `{self.dotted}`"
        lines = [f"{head}: {self.message}"]
        if self.override:
            # The value came from the command line: the file's line would show the value it replaced.
            lines.append(f"  from override: {self.override}")
        elif snippet:
            lines.append(snippet)
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


def dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class SpecError(Exception):
    """All problems of a spec at once. Raised by the compiler; the CLI renders it, never a traceback."""

    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # file -> text, for snippets

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        return "\n\n".join(p.render(snippet_for(p, self.sources)) for p in self.problems)

    def __str__(self) -> str:
        return self.render()


def snippet_for(problem: Problem, sources: dict[str, str], context: int = 1) -> str | None:
    """A numbered excerpt of the spec around the problem, with a caret under the column."""
    loc = problem.location
    if loc is None or loc.line is None or loc.file not in sources:
        return None
    lines = sources[loc.file].splitlines()
    first, last = max(1, loc.line - context), min(len(lines), loc.line + context)
    width = len(str(last))
    out = []
    for number in range(first, last + 1):
        out.append(f"  {number:>{width}} | {lines[number - 1]}")
        if number == loc.line:
            out.append(f"  {' ' * width} | {' ' * ((loc.column or 1) - 1)}^")
    return "\n".join(out)


def did_you_mean(value: Any, choices: list[str]) -> str | None:
    """`did you mean `x`?` for a near miss among `choices` (a typo, or the start of a longer name)."""
    import difflib

    text = str(value)
    close = difflib.get_close_matches(text, choices, n=1, cutoff=0.7)
    if not close and len(text) >= 4:
        close = [c for c in choices if c.startswith(text) or text.lower() == c.lower()][:1]
    return f"did you mean `{close[0]}`?" if close else None
