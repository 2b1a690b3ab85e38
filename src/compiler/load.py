"""Load: YAML text -> a plain tree plus the line/column of every key, with duplicate keys as errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscale.compiler.errors import Location, Problem, SpecError

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """A loaded spec: its plain tree and where each key and item sits in the file."""

    file: str
    text: str
    tree: dict[str, Any]
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> (line, col), 1-based

    def locate(self, path: Path_) -> Location:
        """The location of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            mark = self.marks.get(tuple(path[:end]))
            if mark:
                return Location(self.file, *mark)
        return Location(self.file, 1, 1)


def load_text(text: str, file: str = "<spec>") -> Document:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        key = str(exc.problem).split('"')[1] if '"' in str(exc.problem) else "?"
        raise SpecError(
            [
                Problem(
                    f"duplicate key `{key}`: YAML would silently keep only one of them",
                    location=Location(file, mark.line + 1, mark.column + 1) if mark else None,
                    fix=f"remove or merge the repeated `{key}`",
                )
            ],
            {file: text},
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecError(
            [
                Problem(
                    f"YAML syntax error: {exc.problem or exc.context}",
                    location=Location(file, mark.line + 1, mark.column + 1) if mark else None,
                    fix="check indentation, colons and quotes on this line and the one above",
                )
            ],
            {file: text},
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(
            [Problem(f"a spec must be a mapping of keys, found {type(raw).__name__}", location=Location(file, 1, 1))],
            {file: text},
        )
    marks: dict[Path_, tuple[int, int]] = {}
    tree = _plain(raw, (), marks)
    return Document(file, text, tree, marks)


def load_file(path: str | Path) -> Document:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError([Problem(f"spec file not found: {path}", fix="check the path; specs live in specs/")]) from None
    return load_text(text, str(path))


def _plain(node: Any, path: Path_, marks: dict[Path_, tuple[int, int]]) -> Any:
    """Convert ruamel's round-trip nodes to plain Python, recording each key's position."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import ScalarString

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            child = (*path, str(key))
            try:
                line, col = node.lc.key(key)
                marks[child] = (line + 1, col + 1)
            except (KeyError, TypeError):
                pass
            out[str(key)] = _plain(node[key], child, marks)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            child = (*path, index)
            try:
                line, col = node.lc.item(index)
                marks[child] = (line + 1, col + 1)
            except (KeyError, TypeError):
                pass
            items.append(_plain(item, child, marks))
        return items
    if isinstance(node, ScalarString):
        return str(node)
    if type(node).__module__.startswith("ruamel"):
        # ScalarFloat, ScalarInt, ScalarBoolean, timestamps: fall back to the plain builtin
        for builtin in (bool, int, float):
            if isinstance(node, builtin):
                return builtin(node)
        return str(node)
    return node
