"""Feature types inferred from the warehouse: `inputs: all`, bare column names and `target: NAME`.

Runs in the data contract at compile time, on a cheap profile of the query's result
(`rscale.warehouses.profile`); the plan then holds the resolved list, so a run never changes meaning
because the table did. The rules, in order (documented in docs/spec-reference.md's features section):

- BOOLEAN                                   -> binary
- a number (INTEGER, DOUBLE, DECIMAL, ...)   -> binary when it holds exactly the values 0 and 1, else numeric
- a string                                  -> text when its average length is above TEXT_MIN_LENGTH characters,
                                               or it has more than TEXT_MIN_DISTINCT distinct values making up
                                               at least half of the rows; else categorical
- a LIST / ARRAY                            -> sequence
- anything else (TIMESTAMP, DATE, STRUCT)    -> not a model input: `all` skips it, a bare name is an error

The target: binary as above (BOOLEAN, or a number holding only 0 and 1), categorical for strings (and
always for a session_rec model), numeric for other numbers (a regression task).
`inputs: all` takes every column except the id, the target, the time column, the key split's column and
`exclude`, and skips string columns holding a different value in every row (identifiers) and columns whose
inferred type the model cannot read (each said in `rs compile --explain`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rscale.compiler.contract import BOOLEAN, NUMERIC, STRING, family
from rscale.compiler.errors import Problem, did_you_mean
from rscale.compiler.spec.features import Feature, FeaturesSpec, ResolvedFeatures
from rscale.warehouses.profile import ColumnProfile

TEXT_MIN_LENGTH = 40  # average characters above which a string column is free text, not a category
TEXT_MIN_DISTINCT = 1000  # distinct values above which (and >= half the rows) a string column is free text

# What each built-in model reads; a custom module reads any type.
MODEL_INPUTS = {
    "tabular": {"numeric", "categorical", "binary"},
    "text": {"text"},
    "session_rec": {"sequence"},
}


@dataclass(frozen=True)
class Inferred:
    """One column's fate in inference, for `rs compile --explain`."""

    column: str
    warehouse_type: str
    role: str  # input, target, skipped, left out
    type: str | None
    reason: str


def infer_type(profile: ColumnProfile) -> tuple[str | None, str]:
    """The feature type a column reads as, and why; None when it is not a model input."""
    kind = family(profile.type)
    if kind in BOOLEAN:
        return "binary", f"{profile.type} is true/false"
    if kind in NUMERIC:
        if _zero_one(profile):
            return "binary", f"{profile.type} holding only 0 and 1"
        return "numeric", f"{profile.type} is a number"
    if kind in STRING:
        length = profile.avg_length or 0.0
        distinct = profile.distinct or 0
        filled = profile.rows - profile.nulls
        if length > TEXT_MIN_LENGTH:
            return "text", f"{profile.type} averaging {length:.0f} characters (> {TEXT_MIN_LENGTH}: free text)"
        if distinct > TEXT_MIN_DISTINCT and distinct * 2 >= filled:
            return "text", f"{profile.type} with {distinct:,} distinct values (> {TEXT_MIN_DISTINCT:,} and half the rows: free text)"
        return "categorical", f"{profile.type} with {distinct:,} distinct values, averaging {length:.0f} characters"
    if kind in ("LIST", "ARRAY"):
        return "sequence", f"{profile.type} is a list"
    return None, f"{profile.type} is not a model input type"


def infer_target(profile: ColumnProfile, model_type: str) -> tuple[str | None, str]:
    """The target's type, which decides the task (binary/categorical: classification; numeric: regression)."""
    kind = family(profile.type)
    if model_type == "session_rec":
        return "categorical", "a session_rec model predicts the next item's id"
    if kind in BOOLEAN or (kind in NUMERIC and _zero_one(profile)):
        return "binary", f"{profile.type} with two values: binary classification"
    if kind in NUMERIC:
        return "numeric", f"{profile.type} with {profile.distinct or 0:,} distinct values: regression"
    if kind in STRING:  # classes by name (binary targets are read as 0/1 or true/false)
        return "categorical", f"{profile.type} with {profile.distinct or 0:,} classes: classification"
    return None, f"{profile.type} cannot be a target"


def is_identifier(profile: ColumnProfile) -> bool:
    """A string column unique in every row (of more than a handful) names rows; it is not a feature."""
    filled = profile.rows - profile.nulls
    return filled > 20 and profile.distinct == filled


def _zero_one(profile: ColumnProfile) -> bool:
    return profile.distinct == 2 and profile.min == 0 and profile.max == 1


def resolve_features(
    features: FeaturesSpec,
    profiles: list[ColumnProfile],
    *,
    model_type: str,
    reserved: dict[str, str],
) -> tuple[ResolvedFeatures | None, list[Inferred], list[Problem]]:
    """Resolve the spec's features against the query's profiled columns.

    `reserved` maps columns that are never inputs of `all` to why (the time column, the split's key).
    Returns the resolved features (None when a problem leaves none), what happened to each column, and the
    problems, each at the key path that names the column.
    """
    by_name = {p.name: p for p in profiles}
    folded = {p.name.lower(): p for p in profiles}
    listing = ", ".join(f"{p.name} ({p.type})" for p in profiles)
    problems: list[Problem] = []
    explained: list[Inferred] = []

    def find(name: str) -> ColumnProfile | None:
        return by_name.get(name) or folded.get(name.lower())

    def missing(name: str, path: tuple[str | int, ...], role: str) -> Problem:
        hint = did_you_mean(name, list(by_name))
        return Problem(
            f"column `{name}` ({role}) is not in the query's result",
            path=path,
            fix=(hint + " " if hint else "") + f"the query returns: {listing}",
        )

    # the target
    target: Feature | None = None
    if isinstance(features.target, Feature):
        target = features.target
        explained.append(Inferred(target.name, _type_of(find(target.name)), "target", target.type, "written in the spec"))
    else:
        column = find(features.target)
        if column is None:
            problems.append(missing(features.target, ("features", "target"), "the target"))
        else:
            kind, reason = infer_target(column, model_type)
            if kind is None:
                problems.append(
                    Problem(
                        f"cannot infer a target type for `{features.target}`: {reason}",
                        path=("features", "target"),
                        fix="write the target as {name: ..., type: binary|categorical|numeric}, or CAST it in the query",
                    )
                )
            else:
                target = Feature(name=features.target, type=kind)  # type: ignore[arg-type]
                explained.append(Inferred(features.target, column.type, "target", kind, reason))

    inputs: list[Feature] = []
    if isinstance(features.inputs, list):
        for index, item in enumerate(features.inputs):
            if isinstance(item, Feature):
                inputs.append(item)
                explained.append(Inferred(item.name, _type_of(find(item.name)), "input", item.type, "written in the spec"))
                continue
            column = find(item)
            if column is None:
                problems.append(missing(item, ("features", "inputs", index), "an input"))
                continue
            kind, reason = infer_type(column)
            if kind is None:
                problems.append(
                    Problem(
                        f"cannot infer a feature type for input `{item}`: {reason}",
                        path=("features", "inputs", index),
                        fix=f"write it as {{name: {item}, type: ...}} after a CAST in the query, or remove it",
                    )
                )
                continue
            inputs.append(Feature(name=item, type=kind))  # type: ignore[arg-type]
            explained.append(Inferred(item, column.type, "input", kind, reason))
    else:
        excluded = {}
        for index, name in enumerate(features.exclude):
            column = find(name)
            if column is None:
                problems.append(missing(name, ("features", "exclude", index), "excluded"))
            else:
                excluded[column.name] = "in features.exclude"
        left_out = {
            **{find(n).name: why for n, why in reserved.items() if find(n) is not None},  # type: ignore[union-attr]
            **excluded,
        }
        if features.id and find(features.id) is not None:
            left_out[find(features.id).name] = "the id"  # type: ignore[union-attr]
        target_column = find(features.target_name)
        if target_column is not None:
            left_out[target_column.name] = "the target"
        readable = MODEL_INPUTS.get(model_type)
        for column in profiles:
            if column.name in left_out:
                if left_out[column.name] != "the target":
                    explained.append(Inferred(column.name, column.type, "left out", None, left_out[column.name]))
                continue
            kind, reason = infer_type(column)
            if kind is None:
                explained.append(Inferred(column.name, column.type, "skipped", None, reason))
            elif kind in ("categorical", "text") and is_identifier(column):
                explained.append(
                    Inferred(column.name, column.type, "skipped", None,
                             "a different value in every row: an identifier (name it as features.id to keep it)")
                )
            elif readable is not None and kind not in readable:
                explained.append(
                    Inferred(column.name, column.type, "skipped", kind, f"{reason}; a {model_type} model does not read {kind}")
                )
            else:
                inputs.append(Feature(name=column.name, type=kind))  # type: ignore[arg-type]
                explained.append(Inferred(column.name, column.type, "input", kind, reason))
        if not inputs and not problems:
            problems.append(
                Problem(
                    "`inputs: all` found no column the model can read",
                    path=("features", "inputs"),
                    fix=f"the query returns: {listing}; see `rs compile --explain` for why each was left out",
                )
            )
    if problems or target is None or not inputs:
        return None, explained, problems
    return ResolvedFeatures(inputs=inputs, target=target, id=features.id), explained, []


def _type_of(column: ColumnProfile | None) -> str:
    return column.type if column is not None else "?"
