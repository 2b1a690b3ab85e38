"""The end of a sweep: a results table (terminal, CSV and HTML), a plot of the metric against each swept key,
and the best member's fully resolved spec as best.yaml, deployable as is with `rs run .../best.yaml`."""

from __future__ import annotations

import csv
import io
import math
from typing import TYPE_CHECKING, Any

from rscale.compiler.spec.evaluate import higher_is_better
from rscale.console import out
from rscale.reports import Page, code, png_of, pyplot, table, text, write_report

if TYPE_CHECKING:
    from pathlib import Path

    from rscale.compiler.plan import Plan
    from rscale.sweeps.run import Sweep


def rank_metric(sweep: Sweep) -> str:
    """The metric the table is sorted by: the gate's metric, else the spec's first metric."""
    plan = sweep.members[0].plan
    return plan.evaluate.gate.metric if plan.evaluate.gate else plan.evaluate.metrics[0]


def rows(sweep: Sweep, state: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per member: its swept values, metrics, gate decision, time and where its runs are."""
    out = []
    for member in sweep.members:
        entry = state["members"].get(member.plan.hash, {})
        outcome = entry.get("outcome") or {}
        row: dict[str, Any] = {"member": member.plan.hash, "status": entry.get("status", "pending"), **member.plan.swept}
        row.update(outcome.get("metrics", {}))
        gate = outcome.get("gate") or {}
        row["gate"] = "" if not gate else ("passed" if gate.get("passed") else "blocked")
        row["seconds"] = round(outcome["seconds"], 1) if "seconds" in outcome else ""
        row["error"] = entry.get("error", "")
        if outcome.get("baseline_metrics"):  # the same for every member: the data steps are shared
            row["baseline"] = outcome.get("baseline", "")
            row["baseline_value"] = outcome["baseline_metrics"].get(rank_metric(sweep), math.nan)
        row["zenml_run"] = outcome.get("run_name", "")
        row["tracker_run"] = (outcome.get("training") or {}).get("tracker_run_id") or ""
        out.append(row)
    return out


def ranked(sweep: Sweep, state: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The rows, finished members first, best first by the rank metric; then the unfinished ones."""
    metric = rank_metric(sweep)
    table = rows(sweep, state)
    finished = [r for r in table if r["status"] == "done" and _is_number(r.get(metric))]
    rest = [r for r in table if r not in finished]
    # ties on the rank metric are broken by the spec's other metrics, each in its own direction
    order = [metric, *(m for m in sweep.members[0].plan.evaluate.metrics if m != metric)]

    def key(row: dict[str, Any]) -> tuple[float, ...]:
        values: list[tuple[str, Any]] = [(m, row.get(m)) for m in order]
        return tuple((-v if higher_is_better(m) else v) if _is_number(v) else math.inf for m, v in values)

    finished.sort(key=key)
    return finished + rest, metric


def best_yaml(plan: Plan, header: str) -> str:
    """The plan's resolved spec as YAML; multi-line strings (the query) as literal blocks, so they read as written."""
    import yaml  # PyYAML ships with zenml and hydra; used to write, never to parse specs

    class Dumper(yaml.SafeDumper):
        pass

    def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        # PyYAML falls back to a quoted style by itself where a literal block cannot hold the string
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, represent_str)
    tree = plan.spec_tree()
    tree.update(_loop_blocks(plan))
    return header + yaml.dump(tree, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=120)


def _loop_blocks(plan: Plan) -> dict[str, Any]:
    """`feedback` and `monitor` stay out of the plan (they never change training); carry them over from the
    spec file, so the best member keeps its outcome query and thresholds once deployed."""
    from rscale.compiler.errors import SpecError
    from rscale.data.feedback import spec_of

    try:
        spec = spec_of(plan)
    except SpecError:
        return {}
    blocks: dict[str, Any] = {"monitor": spec.monitor.model_dump(mode="json", exclude_none=True)}
    if spec.feedback is not None:
        blocks["feedback"] = spec.feedback.model_dump(mode="json", exclude_none=True)
    return blocks


def write_sweep_report(sweep: Sweep, state: dict[str, Any]) -> None:
    """Print the table; write results.csv, results.png, results.html and (once a member finished) best.yaml."""
    console = out()
    table, metric = ranked(sweep, state)
    keys = list(sweep.swept_keys)
    metrics = list(sweep.members[0].plan.evaluate.metrics)
    columns = ["member", "status", *keys, *metrics, "gate", "seconds", "error", "zenml_run", "tracker_run"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table)
    (sweep.folder / "results.csv").write_text(buffer.getvalue())
    shown = ["member", *keys, *metrics, "gate", "seconds", "status"]
    _render(table, shown, metric, sweep)
    best = next((r for r in table if r["status"] == "done" and _is_number(r.get(metric))), None)
    best_file = sweep.folder / "best.yaml"
    if best is not None:
        plan = next(m.plan for m in sweep.members if m.plan.hash == best["member"])
        header = (
            f"# Best member of sweep {sweep.sweep_id} ({sweep.name}) by {metric} = {best[metric]:.4f}\n"
            f"# overrides: {' '.join(plan.overrides) or '(none)'}\n"
            f"# its gate {best['gate'] or 'was not evaluated'} in the sweep (rs run deploys only when the gate passes)\n"
            f"# plan {plan.hash}; deploy it with: rs run {_shown_path(best_file)}\n"
        )
        best_file.write_text(best_yaml(plan, header))
        console.print(f"best: {best['member'][:8]} ({metric}={best[metric]:.4f}) -> {_shown_path(best_file)}")
    written = write_report(sweep.folder, "results", _page(table, shown, metric, sweep))
    outputs = ", ".join(_shown_path(p) for p in [sweep.folder / "results.csv", *written.values()])
    console.print(f"results: {outputs}")


def _shown_path(path: Path) -> str:
    from rscale.paths import project_root

    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _cell(column: str, value: Any, swept: list[str]) -> str:
    if column == "member":
        return str(value)[:8]
    if column == "seconds" and _is_number(value):
        return f"{value:.1f}"
    if column not in swept and isinstance(value, float):
        return f"{value:.4f}"  # a metric
    return "" if value is None else str(value)  # a swept value as Hydra parsed it, or text


def _render(table: list[dict[str, Any]], columns: list[str], metric: str, sweep: Sweep) -> None:
    from rich.table import Table

    console = out()
    order = "highest" if higher_is_better(metric) else "lowest"
    view = Table(title=f"sweep {sweep.sweep_id}: {sweep.name}, by {metric} ({order} first)", title_justify="left")
    for column in columns:
        view.add_column(column, justify="left" if column in ("member", "status", "gate") else "right",
                        style="bold" if column == metric else None, no_wrap=True)
    for row in table:
        view.add_row(*[_cell(c, row.get(c, ""), sweep.swept_keys) for c in columns])
    console.print(view)
    base = next((r for r in table if r.get("baseline")), None)
    if base is not None:
        gate = sweep.members[0].plan.evaluate.gate
        rule = f"; the gate asks for a lift of at least {gate.min_lift:+.1%} over it" if gate else ""
        console.print(f"baseline {base['baseline']}: {metric}={base['baseline_value']:.4f}{rule}", soft_wrap=True)
    for row in table:
        if row.get("error"):
            console.print(f"[red]{row['member'][:8]}[/]: {row['error']}", soft_wrap=True)


def _plot(table: list[dict[str, Any]], metric: str, sweep: Sweep) -> bytes | None:
    """results.png: the metric against each swept key, one line per combination of the other keys."""
    done = [r for r in table if r["status"] == "done" and _is_number(r.get(metric))]
    if not done:
        return None
    plt = pyplot()
    keys = sweep.swept_keys or ["member"]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        values: list[Any] = [r.get(key) for r in done]
        numeric = all(_is_number(v) for v in values)
        groups: dict[str, list[tuple[Any, float]]] = {}
        others = [k for k in keys if k != key]
        for r in done:
            label = ", ".join(f"{k}={r.get(k)}" for k in others) or metric
            groups.setdefault(label, []).append((r.get(key), r[metric]))
        for label, points in groups.items():
            points.sort(key=lambda p: p[0] if numeric else str(p[0]))
            xs = [p[0] if numeric else str(p[0]) for p in points]
            ax.plot(xs, [p[1] for p in points], marker="o", label=label)
        base = next((r for r in done if _is_number(r.get("baseline_value"))), None)
        if base is not None:  # what the gate compares against: the same for every member
            ax.axhline(base["baseline_value"], color="grey", linestyle="--", linewidth=1, label=f"baseline {base['baseline']}")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        if numeric and min(values) > 0 and max(values) / min(values) >= 10:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        if len(groups) > 1 or base is not None:
            ax.legend(fontsize=7)
    fig.suptitle(f"sweep {sweep.sweep_id} ({sweep.name}): {metric} by swept key")
    fig.tight_layout()
    return png_of(fig, dpi=110)


def _page(table_rows: list[dict[str, Any]], columns: list[str], metric: str, sweep: Sweep) -> Page:
    """results.html: one self-contained page (the plot embedded) to open in a browser or attach to a review."""
    command = " ".join(["rs run", sweep.members[0].plan.spec_file, "-m", *sweep.overrides])
    png = _plot(table_rows, metric, sweep)
    page = Page(f"sweep {sweep.sweep_id}: {sweep.name}", png=png, alt=f"{metric} by swept key")
    return page.add(
        text("h1", f"sweep {sweep.sweep_id}: {sweep.name}"),
        text("p", code(command)),
        text(
            "p",
            f"Sorted by {metric}, {'highest' if higher_is_better(metric) else 'lowest'} first. The best member's spec is ",
            code("best.yaml"), "; full rows are in ", code("results.csv"), ".",
        ),
        table(columns, ([_cell(c, r.get(c, ""), sweep.swept_keys) for c in columns] for r in table_rows)),
        "" if png else text("p", "No member has finished yet."),
    )
