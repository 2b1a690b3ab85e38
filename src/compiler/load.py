"""Load: YAML text -> a plain tree plus the line/column of every key, with duplicate keys as errors.

Every duplicate key in the file is reported (not only the first), together with whatever validation
finds later, so one `rs validate` shows all of a spec's mistakes. A YAML syntax error stops loading: it
is reported alone, with a numbered snippet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscale.compiler.errors import Location, Problem, SpecError
from rscale.compiler.spec.secrets import mask_secret_lines

Path_ = tuple[str | int, ...]
MASK = "********"


@dataclass
class Document:
    """A loaded spec: its plain tree, where each key and item sits in the file, and problems found on load."""

    file: str
    text: str
    tree: dict[str, Any]
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> (line, col), 1-based
    problems: list[Problem] = field(default_factory=list)  # duplicate keys: reported with validation's
    secrets: set[str] = field(default_factory=set)  # literal secrets seen; masked wherever the text is shown

    def locate(self, path: Path_) -> Location:
        """The location of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            mark = self.marks.get(tuple(path[:end]))
            if mark:
                return Location(self.file, *mark)
        return Location(self.file, 1, 1)

    def has(self, path: Path_) -> bool:
        """Whether the file itself writes `path` (as opposed to a default or an override)."""
        return tuple(path) in self.marks

    def mask(self, text: str) -> str:
        """`text` with every literal secret of this spec replaced, so errors never repeat a secret."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def sources(self) -> dict[str, str]:
        """File -> text for error snippets, with literal secrets masked."""
        return {self.file: self.mask(self.text)}

    def error(self, problems: list[Problem]) -> SpecError:
        """A SpecError over this document, its problems' override strings masked like the text."""
        from dataclasses import replace

        masked = [replace(p, override=self.mask(p.override)) if p.override else p for p in problems]
        return SpecError(masked, self.sources())


def load_text(text: str, file: str = "<spec>") -> Document:
    """Parse YAML text into a Document. Raises SpecError for syntax errors and non-mapping documents."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True  # duplicates are found below, all of them, with positions
    try:
        node = yaml.compose(text)  # parsed once: duplicates are found on the nodes, then they are constructed
        duplicates = _duplicate_keys(node, file)
        raw = yaml.constructor.construct_document(node) if node is not None else None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecError(
            [
                Problem(
                    f"YAML syntax error: {exc.problem or exc.context}",
                    location=Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1),
                    fix="check indentation, colons, brackets and quotes on this line and the one above",
                )
            ],
            {file: mask_secret_lines(text)},  # the snippet must not show a credential the tree check never saw
        ) from None
    except (YAMLError, ValueError, RecursionError) as exc:  # reader errors (bad characters), deep nesting
        raise SpecError(
            [Problem(f"cannot read YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                     location=Location(file, 1, 1), fix="save the spec as plain UTF-8 YAML")],
            {file: mask_secret_lines(text)},
        ) from None
    if raw is None:
        raise SpecError(
            [
                Problem(
                    "the spec is empty",
                    location=Location(file, 1, 1),
                    fix="start the spec with `spec_version: 1` and `name: ...` at the top level",
                )
            ],
            {file: text},
        )
    if not isinstance(raw, dict):
        raise SpecError(
            [
                Problem(
                    f"a spec must be a mapping of keys (`name: ...`, `data: ...`), found a {_kind(raw)}",
                    location=Location(file, 1, 1),
                    fix="start the spec with `spec_version: 1` and `name: ...` at the top level",
                )
            ],
            {file: text},
        )
    marks: dict[Path_, tuple[int, int]] = {}
    tree = _plain(raw, (), marks)
    if tree:  # the top level "sits" at its first key, not on a leading comment line
        marks[()] = marks.get((next(iter(tree)),), (1, 1))
    return Document(file, text, tree, marks, duplicates)


MAX_SPEC_BYTES = 1024 * 1024  # a spec is a page of YAML; anything far larger is the wrong file


def load_file(path: str | Path) -> Document:
    path = Path(path)
    if path.exists() and not path.is_dir() and (not path.is_file() or path.stat().st_size > MAX_SPEC_BYTES):
        # a device, a pipe or a huge file: reading it could block or exhaust memory before any check ran
        what = "not a regular file" if not path.is_file() else f"{path.stat().st_size:,} bytes (a spec is at most 1 MiB)"
        raise SpecError([Problem(f"cannot read the spec: {path} is {what}", location=Location(str(path)),
                                 fix="pass the spec's YAML file, e.g. specs/NAME.yaml")])  # fmt: skip
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            [Problem(f"spec file not found: {path}", location=Location(str(path)), fix="check the path; specs live in specs/")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            [Problem(f"cannot read the spec: {exc}", location=Location(str(path)), fix="pass a UTF-8 YAML file")]
        ) from None
    return load_text(text, str(path))


def _kind(value: Any) -> str:
    """How a YAML value reads to a person: a list, a string, a number, ..."""
    for kind, name in ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"), (list, "list"), (dict, "mapping")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _duplicate_keys(node: Any, file: str) -> list[Problem]:
    """Every key that appears twice in one mapping, anywhere in the document."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    problems: list[Problem] = []
    stack, seen_nodes = [node], set()
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, MappingNode):
            first: dict[str, Any] = {}
            for key_node, value_node in current.value:
                key = str(getattr(key_node, "value", key_node))
                if key == "<<":  # merge keys may repeat
                    stack.append(value_node)
                    continue
                if key in first:
                    mark = key_node.start_mark
                    earlier = first[key].start_mark
                    problems.append(
                        Problem(
                            f"duplicate key `{key}` (first at line {earlier.line + 1}): YAML would silently keep only one",
                            location=Location(file, mark.line + 1, mark.column + 1),
                            fix=f"remove or merge the repeated `{key}`",
                        )
                    )
                else:
                    first[key] = key_node
                stack.append(value_node)
        elif isinstance(current, SequenceNode):
            stack.extend(current.value)
    problems.sort(key=lambda p: (p.location.line or 0, p.location.column or 0) if p.location else (0, 0))
    return problems


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
            except (KeyError, TypeError, AttributeError):
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
            except (KeyError, TypeError, AttributeError):
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
    if isinstance(node, (dict, list, set, tuple)):  # a plain container ruamel built (e.g. !!set, !!omap)
        return str(node)
    return node
