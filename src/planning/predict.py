"""Which steps a run will compute and which ZenML will serve from its cache, and why; and the spec diff.

A step is reused when an earlier completed run of the use case had the same shadow cache key
(`rscale.planning.steps`): ZenML looks for any completed run with the key, not only the last one. When it
runs, the reason is found by comparing its key's parts with the same step in the last run: a parameter
(named by the plan keys that changed), the data fingerprint, the step's code, the stack, or an input that
comes from a step that runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from rscale.planning.history import RunRecord
from rscale.planning.steps import StepKey, call_of

Action = Literal["run", "reuse", "unknown"]


class StepPlan(BaseModel):
    name: str
    action: Action
    reasons: list[str] = Field(default_factory=list)
    key: str


class KeyChange(BaseModel):
    key: str
    before: Any = None
    after: Any = None
    change: Literal["changed", "added", "removed"]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"train": {"lr": 1}}` -> `{"train.lr": 1}`; lists of scalars stay values, lists of blocks get indexes."""
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat or ({prefix: {}} if prefix else {})
    if isinstance(tree, list) and any(isinstance(v, (dict, list)) for v in tree):
        flat = {}
        for index, value in enumerate(tree):
            flat.update(flatten(value, f"{prefix}.{index}"))
        return flat or {prefix: []}
    return {prefix: tree}


def key_changes(before: dict[str, Any], after: dict[str, Any]) -> list[KeyChange]:
    """Keys of two trees that differ, in sorted order."""
    old, new = flatten(before), flatten(after)
    changes = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            changes.append(KeyChange(key=key, after=new[key], change="added"))
        elif key not in new:
            changes.append(KeyChange(key=key, before=old[key], change="removed"))
        elif old[key] != new[key]:
            changes.append(KeyChange(key=key, before=old[key], after=new[key], change="changed"))
    return changes


def spec_of(plan_dump: dict[str, Any]) -> dict[str, Any]:
    """The resolved spec a plan dump stands for, plus where it runs: what a person compares between runs."""
    from rscale.compiler.plan import Plan

    try:
        plan = Plan.model_validate(plan_dump)
    except ValueError:  # a record from an older plan shape: compare what it holds
        return {k: v for k, v in plan_dump.items() if k not in ("hash", "spec_file", "overrides", "swept", "hardware")}
    return {**plan.spec_tree(), "stack": plan.stack.name}


def predict_steps(
    keys: dict[str, StepKey],
    plan_dump: dict[str, Any],
    runs: list[RunRecord],
    *,
    pending: dict[str, str] | None = None,
) -> list[StepPlan]:
    """Predict every step. `pending`: keys that earlier members of the same sweep will have computed by then
    (key -> a label of who computes it)."""
    from rscale.planning.zenml_store import cached_keys

    known: dict[str, str] = {}
    zenml_keys: dict[str, set[str]] = {}
    for record in runs:
        for step in record.steps.values():
            if step.status in ("completed", "cached"):
                known[step.key] = record.run_name
                if step.zenml_cache_key:
                    zenml_keys.setdefault(step.key, set()).add(step.zenml_cache_key)
    wanted = {z for k in keys.values() if k.key in zenml_keys for z in zenml_keys[k.key]}
    in_store = cached_keys(wanted) if wanted else None  # None: not checked (another store, or nothing to check)
    last = runs[-1] if runs else None
    running: set[str] = set()
    plans: list[StepPlan] = []
    for name, key in keys.items():
        call = call_of(name)
        if key.key == "?":
            plans.append(StepPlan(name=name, action="unknown", key=key.key,
                                  reasons=["the data fingerprint could not be taken (see above)"]))
            running.add(name)
            continue
        if not call.cache:
            reasons = ["never cached (enable_cache=False): it runs every time"]
            plans.append(StepPlan(name=name, action="run", key=key.key, reasons=reasons))
            running.add(name)
            continue
        if pending and key.key in pending:
            plans.append(StepPlan(name=name, action="reuse", key=key.key, reasons=[f"computed by {pending[key.key]}"]))
            continue
        if key.key in known and in_store is not None and key.key in zenml_keys and not zenml_keys[key.key] & in_store:
            plans.append(StepPlan(name=name, action="run", key=key.key, reasons=[
                f"its cached run ({known[key.key]}) is no longer in ZenML's store (deleted or expired)"]))
            running.add(name)
            continue
        if key.key in known:
            where = "the last run" if last and known[key.key] == last.run_name else f"run {known[key.key]}"
            plans.append(StepPlan(name=name, action="reuse", key=key.key, reasons=[f"same inputs as {where}"]))
            continue
        plans.append(StepPlan(name=name, action="run", key=key.key,
                              reasons=_why(name, key, plan_dump, last, running)))
        running.add(name)
    return plans


def _why(name: str, key: StepKey, plan_dump: dict[str, Any], last: RunRecord | None, running: set[str]) -> list[str]:
    if last is None:
        return ["no earlier run of this use case"]
    before = last.steps.get(name)
    if before is None:
        return ["the last run did not have this step"]
    call = call_of(name)
    if before.parts.get("stack") != key.parts.get("stack"):  # another project store and artifact store: all new
        return [f"stack changed ({last.stack} -> {plan_dump['stack']['name']})"]
    reasons = []
    if before.parts.get("code") != key.parts.get("code"):
        reasons.append(f"step code changed ({call.source})")
    inputs: dict[str, list[str]] = {}
    for part, value in key.parts.items():
        if before.parts.get(part) == value or not part.startswith(("param:", "input:")):
            continue
        source, param = part.split(":", 1)
        if source == "input":
            inputs.setdefault(call.inputs[param][0], []).append(f"`{param}`")
        elif param == "fingerprint":
            reasons.append("data fingerprint changed (the data behind the query changed)")
        else:
            path = call.param_path(param)
            changed = [c.key for c in key_changes(last.plan, plan_dump) if c.key != "hash"]
            changed = [k for k in changed if not any(o.startswith(k + ".") for o in changed)]  # `swept` vs swept.x
            if path is not None:
                prefix = ".".join(path)
                changed = [k for k in changed if not prefix or k == prefix or k.startswith(prefix + ".")]
            reasons.append(f"`{param}` changed: " + (", ".join(_short(changed)) if changed else "(its value)"))
    for producer, names in inputs.items():
        what = f"input{'s' if len(names) > 1 else ''} {', '.join(names)} from {producer}"
        reasons.append(f"{what}, which runs" if producer in running else f"{what} changed")
    return reasons or ["no completed run with these inputs"]


def _short(keys: list[str], most: int = 6) -> list[str]:
    return keys if len(keys) <= most else [*keys[:most], f"... {len(keys) - most} more"]
