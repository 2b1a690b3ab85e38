"""The compiler's driver: spec file + overrides + stack -> one Plan per sweep member, or every problem at once.

The data contract (the query's result schema against the columns the spec names) is asked of the
warehouse once per distinct query, not once per sweep member; `offline=True` skips it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from rscale.compiler.errors import Location, Problem, SpecError
from rscale.compiler.load import Document, load_file
from rscale.compiler.overrides import apply, expand
from rscale.compiler.plan import Plan, build_plan
from rscale.compiler.spec import Spec
from rscale.compiler.stack import StackSpec, load_stack
from rscale.compiler.validate import validate


@dataclass
class Compiled:
    """The result of compiling one spec: a plan per sweep member (one without a sweep) and warnings."""

    doc: Document
    stack: StackSpec
    plans: list[Plan]
    warnings: list[Problem] = field(default_factory=list)
    contract_checked: bool = False  # False with --offline

    @property
    def is_sweep(self) -> bool:
        return len(self.plans) > 1 or any(p.swept for p in self.plans)


def read_query(spec: Spec, doc: Document) -> str:
    if spec.data.query is not None:
        return spec.data.query
    path = Path(doc.file).parent / str(spec.data.query_file)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else f"unreadable ({type(exc).__name__})"
        raise doc.error(
            [
                Problem(
                    f"query file {reason}: {path}",
                    path=("data", "query_file"),
                    location=doc.locate(("data", "query_file")),
                    fix="the path is relative to the spec file; or write the SQL inline as data.query",
                )
            ]
        ) from None


def compile_spec(
    spec_path: str | Path, overrides: list[str] | None = None, stack: str = "local", offline: bool = False
) -> Compiled:
    """Load, override, validate, plan and (unless offline) check the data contract. Problems from every sweep
    member are reported together."""
    return compile_document(load_file(spec_path), overrides, stack, offline=offline, spec_file=str(spec_path))


def compile_document(
    doc: Document,
    overrides: list[str] | None = None,
    stack: str = "local",
    offline: bool = False,
    spec_file: str | None = None,
) -> Compiled:
    """`compile_spec` on an already loaded Document (for tests and tools that hold YAML text)."""
    try:
        members = expand(list(overrides or []))
        stack_spec = load_stack(stack)
    except SpecError as exc:  # bad override strings, or a missing or invalid stack file (keep its snippets)
        error = doc.error([_with_location(doc, p) for p in exc.problems])
        raise SpecError(error.problems, {**exc.sources, **error.sources}) from None
    plans: list[Plan] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for member in members:
        try:
            tree, origin = apply(doc.tree, member.overrides)
            spec = validate(doc, tree, origin)
            plan = _plan(spec, stack_spec, doc, spec_file or doc.file, member.texts, dict(member.swept))
        except SpecError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
            continue
        plans.append(plan)
        for message in plan.data.warnings:
            problem = Problem(message, path=("data", "query"), location=_query_line(doc, message), severity="warning")
            if problem not in warnings:
                warnings.append(problem)
    if not problems and not offline:
        problems = _contract(plans, doc)
    if any(p.severity == "error" for p in problems):
        raise doc.error([p if p.location else _with_location(doc, p) for p in problems])
    return Compiled(doc, stack_spec, plans, warnings, contract_checked=not offline)


def _plan(spec: Spec, stack: StackSpec, doc: Document, spec_file: str, texts: list[str], swept: dict) -> Plan:
    from sqlglot.errors import SqlglotError

    query = read_query(spec, doc)
    try:
        return build_plan(spec, stack, spec_file=spec_file, query=query, overrides=tuple(texts), swept=swept)
    except SqlglotError as exc:  # e.g. a tokenizer error the SQL module does not turn into a SpecError
        where = ("data", "query") if spec.data.query is not None else ("data", "query_file")
        raise doc.error(
            [Problem(f"the query is not valid {spec.data.dialect} SQL: {str(exc).splitlines()[0]}", path=where,
                     fix="fix the SQL, or set data.dialect to the dialect it is written in")]
        ) from None


def _contract(plans: list[Plan], doc: Document) -> list[Problem]:
    """Check each plan against its query's schema, asking the warehouse once per distinct query."""
    from rscale.compiler.contract import check_contract, query_schema

    problems: list[Problem] = []
    schemas: dict[str, list[tuple[str, str]] | None] = {}
    for plan in plans:
        if plan.data.sql not in schemas:
            schema, failed = query_schema(plan, doc)
            schemas[plan.data.sql] = schema
            problems += [p for p in failed if p not in problems]
        schema = schemas[plan.data.sql]
        if schema is not None:
            found = [_with_override(p, plan.overrides) for p in check_contract(plan, doc, schema)]  # type: ignore[arg-type]
            problems += [p for p in found if p not in problems]
    return problems


def _with_override(problem: Problem, overrides: tuple[str, ...]) -> Problem:
    """Name the override that set the problem's key (or a section holding it), as validation does."""
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+~")
        path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
        if problem.path[: len(path)] == path:
            return replace(problem, override=text)
    return problem


def _with_location(doc: Document, problem: Problem) -> Problem:
    if problem.location is not None:
        return problem
    if problem.path:
        return replace(problem, location=doc.locate(problem.path))
    return replace(problem, location=Location(doc.file))


def _query_line(doc: Document, message: str) -> Location:
    """Where a SQL warning points: the spec line of the query line it names ("query line N: ..")."""
    import re

    key = doc.locate(("data", "query"))
    found = re.match(r"query line (\d+):", message)
    if found is None or key.line is None:
        return key
    key_text = doc.text.splitlines()[key.line - 1]
    block = key_text.rstrip().endswith(("|", "|-", "|+", ">", ">-", ">+"))  # the query starts on the next line
    line = key.line + int(found.group(1)) - (0 if block else 1)
    indent = doc.text.splitlines()[line - 1] if line <= len(doc.text.splitlines()) else ""
    return Location(doc.file, line, len(indent) - len(indent.lstrip()) + 1)
