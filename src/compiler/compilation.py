"""The compiler's driver: spec file + overrides + stack -> one Plan per sweep member, or every problem at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rscale.compiler.errors import Problem, SpecError
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

    @property
    def is_sweep(self) -> bool:
        return len(self.plans) > 1 or any(p.swept for p in self.plans)


def read_query(spec: Spec, doc: Document) -> str:
    if spec.data.query is not None:
        return spec.data.query
    path = Path(doc.file).parent / str(spec.data.query_file)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise SpecError(
            [Problem(f"query file not found: {path}", path=("data", "query_file"), location=doc.locate(("data", "query_file")),
                     fix="the path is relative to the spec file")],
            {doc.file: doc.text},
        ) from None


def compile_spec(spec_path: str | Path, overrides: list[str] | None = None, stack: str = "local") -> Compiled:
    """Load, override, validate and plan. Problems from every sweep member are reported together."""
    doc = load_file(spec_path)
    members = expand(list(overrides or []))
    stack_spec = load_stack(stack)
    plans: list[Plan] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for member in members:
        try:
            tree, origin = apply(doc.tree, member.overrides)
            spec = validate(doc, tree, origin)
            plan = build_plan(
                spec,
                stack_spec,
                spec_file=str(spec_path),
                query=read_query(spec, doc),
                overrides=tuple(member.texts),
                swept=dict(member.swept),
            )
        except SpecError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
            continue
        plans.append(plan)
        for message in plan.data.warnings:
            problem = Problem(message, path=("data", "query"), location=doc.locate(("data", "query")), severity="warning")
            if problem not in warnings:
                warnings.append(problem)
    if problems:
        located = [p if p.location else _with_location(doc, p) for p in problems]
        raise SpecError(located, {doc.file: doc.text})
    return Compiled(doc, stack_spec, plans, warnings)


def _with_location(doc: Document, problem: Problem) -> Problem:
    from dataclasses import replace

    return replace(problem, location=doc.locate(problem.path) if problem.path else None)
