"""The compiler's driver: spec file + overrides + stack -> one Plan per sweep member, or every problem at once.

The data contract (the query's result schema against the columns the spec names) is asked of the
warehouse once per distinct query, not once per sweep member; `offline=True` skips it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rscale.compiler.errors import Location, Problem, SpecError
from rscale.compiler.load import Document, load_file
from rscale.compiler.overrides import apply, expand
from rscale.compiler.plan import Plan, build_plan
from rscale.compiler.spec import Spec
from rscale.compiler.stack import StackSpec, load_stack
from rscale.compiler.validate import validate

if TYPE_CHECKING:  # inference and the contract (and the warehouse profile) are imported only when they run
    from rscale.compiler.inference import Inferred


@dataclass
class Compiled:
    """The result of compiling one spec: a plan per sweep member (one without a sweep) and warnings."""

    doc: Document
    stack: StackSpec
    plans: list[Plan]
    warnings: list[Problem] = field(default_factory=list)
    contract_checked: bool = False  # False with --offline
    inferred: list[Inferred] = field(default_factory=list)  # what inference did with each column (first member)

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
    profiles: dict[str, tuple[Any, list[Problem]]] = {}  # query -> profile, asked once for every member
    inferred: list[Inferred] = []
    for member in members:
        try:
            tree, origin = apply(doc.tree, member.overrides)
            spec = validate(doc, tree, origin)
            spec, explained = _resolve(spec, doc, origin, stack_spec, offline, profiles)
            plan = _plan(spec, stack_spec, doc, spec_file or doc.file, member.texts, dict(member.swept))
        except SpecError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
            continue
        inferred = inferred or explained
        plans.append(plan)
        for message in plan.data.warnings:
            problem = Problem(message, path=("data", "query"), location=_query_line(doc, message), severity="warning")
            if problem not in warnings:
                warnings.append(problem)
    if not problems and not offline:
        known = {sql: [(c.name, c.type) for c in found] for sql, (found, _) in profiles.items() if found is not None}
        problems = _contract(plans, doc, known)
    if any(p.severity == "error" for p in problems):
        raise doc.error([p if p.location else _with_location(doc, p) for p in problems])
    return Compiled(doc, stack_spec, plans, warnings, contract_checked=not offline, inferred=inferred)


def _resolve(
    spec: Spec, doc: Document, origin: dict, stack: StackSpec, offline: bool, profiles: dict[str, tuple[Any, list[Problem]]]
) -> tuple[Spec, list[Inferred]]:
    """Infer the features' types from the warehouse (when the spec leaves them out), fill in the defaults
    that follow from the task, and run the cross-field checks that needed both."""
    from rscale.compiler.crossfield import run_checks
    from rscale.compiler.defaults import with_defaults
    from rscale.compiler.validate import locate

    explained: list[Inferred] = []
    features = spec.features
    if not features.resolved:
        if offline:
            what = "`inputs: all`" if features.inputs == "all" else "a feature without a type"
            where: tuple[str | int, ...] = ("features", "inputs")
            if features.inputs != "all" and all(not isinstance(f, str) for f in features.inputs):
                what, where = "a target without a type", ("features", "target")
            raise doc.error(
                [
                    locate(doc, origin, Problem(
                        f"{what} needs the warehouse to infer the columns' types, and --offline does not ask it",
                        path=where,
                        fix="compile without --offline (`rs seed` creates the demo warehouse), "
                        "or write every feature as {name: ..., type: ...}",
                    ))
                ]
            )
        from rscale.compiler.contract import query_profile  # only here: the warehouse is asked
        from rscale.compiler.inference import resolve_features
        from rscale.compiler.spec.features import FeaturesSpec

        sql = _warehouse_sql(spec, doc, stack)
        if sql not in profiles:
            profiles[sql] = query_profile(stack, sql, doc)
        found, failed = profiles[sql]
        if failed:
            raise doc.error([locate(doc, origin, p) for p in failed])
        reserved = {}
        if spec.data.time_column:
            reserved[spec.data.time_column] = "the time column"
        if spec.split.column:
            reserved[spec.split.column] = f"the {spec.split.by or 'split'}'s column"
        resolved, explained, problems = resolve_features(features, found, model_type=spec.model.type, reserved=reserved)
        if resolved is None:
            raise doc.error([locate(doc, origin, p) for p in problems])
        spec = spec.model_copy(
            update={"features": FeaturesSpec(inputs=list(resolved.inputs), target=resolved.target, id=resolved.id)}
        )
    spec = with_defaults(spec)
    problems = [locate(doc, origin, p) for p in run_checks(spec)]
    if any(p.severity == "error" for p in problems):
        raise doc.error(problems)
    return spec, explained


def _warehouse_sql(spec: Spec, doc: Document, stack: StackSpec) -> str:
    """The spec's query as the stack's warehouse runs it."""
    from rscale.compiler.sql import is_sqlglot_error, transpile

    where = ("data", "query") if spec.data.query is not None else ("data", "query_file")
    try:
        return transpile(read_query(spec, doc), spec.data.dialect, stack.warehouse.kind).sql
    except Exception as exc:  # only SQL errors; sqlglot is not imported when the result is cached
        if not (isinstance(exc, ValueError) or is_sqlglot_error(exc)):
            raise
        raise doc.error(
            [Problem(f"the query is not valid {spec.data.dialect} SQL: {str(exc).splitlines()[0]}", path=where,
                     location=doc.locate(where), fix="fix the SQL, or set data.dialect to the dialect it is written in")]
        ) from None


def _plan(spec: Spec, stack: StackSpec, doc: Document, spec_file: str, texts: list[str], swept: dict) -> Plan:
    from rscale.compiler.sql import is_sqlglot_error

    query = read_query(spec, doc)
    try:
        return build_plan(spec, stack, spec_file=spec_file, query=query, overrides=tuple(texts), swept=swept)
    except Exception as exc:  # a sqlglot error (e.g. from its tokenizer) the SQL module does not turn into a SpecError
        if not is_sqlglot_error(exc):
            raise
        where = ("data", "query") if spec.data.query is not None else ("data", "query_file")
        raise doc.error(
            [Problem(f"the query is not valid {spec.data.dialect} SQL: {str(exc).splitlines()[0]}", path=where,
                     fix="fix the SQL, or set data.dialect to the dialect it is written in")]
        ) from None


def _contract(plans: list[Plan], doc: Document, known: dict[str, list[tuple[str, str]]] | None = None) -> list[Problem]:
    """Check each plan against its query's schema, asking the warehouse once per distinct query (not at all
    for a query inference has already profiled)."""
    from rscale.compiler.contract import check_contract, query_schema

    problems: list[Problem] = []
    schemas: dict[str, list[tuple[str, str]] | None] = dict(known or {})
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
