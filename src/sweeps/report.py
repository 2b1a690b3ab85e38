"""The end of a sweep: a results table (terminal and CSV), a plot of metric against each swept key,
and the best member's fully resolved spec as best.yaml, deployable as is."""

from __future__ import annotations

import csv
import io
from typing import Any

from rscale.compiler.spec.evaluate import higher_is_better


def rows(sweep: Any, state: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for member in sweep.members:
        entry = state["members"].get(member.plan.hash, {})
        outcome = entry.get("outcome") or {}
        row = {"member": member.plan.hash, "status": entry.get("status", "pending"), **member.plan.swept}
        row.update(outcome.get("metrics", {}))
        gate = outcome.get("gate") or {}
        row["gate"] = "" if not gate else ("passed" if gate.get("passed") else "failed")
        row["seconds"] = round(outcome.get("seconds", 0.0), 1) if outcome else ""
        out.append(row)
    return out


def ranked(sweep: Any, state: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    plan = sweep.members[0].plan
    metric = plan.evaluate.gate.metric if plan.evaluate.gate else plan.evaluate.metrics[0]
    table = rows(sweep, state)
    finished = [r for r in table if isinstance(r.get(metric), (int, float))]
    rest = [r for r in table if r not in finished]
    finished.sort(key=lambda r: r[metric], reverse=higher_is_better(metric))
    return finished + rest, metric


def write_report(sweep: Any, state: dict[str, Any]) -> None:
    import yaml  # PyYAML ships with zenml/hydra; used to dump, never to parse specs

    from rscale.cli.app import console

    table, metric = ranked(sweep, state)
    columns = list(dict.fromkeys(k for r in table for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(table)
    (sweep.folder / "results.csv").write_text(buffer.getvalue())
    _render(table, columns, metric, sweep)
    best = next((r for r in table if r["status"] == "done"), None)
    if best is not None:
        plan = next(m.plan for m in sweep.members if m.plan.hash == best["member"])
        tree = plan.spec_tree()
        header = f"# Best member of sweep {sweep.sweep_id} by {metric}: {' '.join(plan.overrides)}\n"
        (sweep.folder / "best.yaml").write_text(header + yaml.safe_dump(tree, sort_keys=False))
        console.print(f"best: {best['member']} ({metric}={best[metric]:.4f}) -> {sweep.folder / 'best.yaml'}")
    _plot(table, metric, sweep)
    console.print(f"results: {sweep.folder / 'results.csv'}, {sweep.folder / 'results.png'}")


def _render(table: list[dict[str, Any]], columns: list[str], metric: str, sweep: Any) -> None:
    from rich.table import Table

    from rscale.cli.app import console

    view = Table(title=f"sweep {sweep.sweep_id}: {sweep.name}, sorted by {metric}", title_justify="left")
    for column in columns:
        view.add_column(column, justify="right" if column not in ("member", "status", "gate") else "left")
    for row in table:
        view.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in (row.get(c, "") for c in columns)])
    console.print(view)


def _plot(table: list[dict[str, Any]], metric: str, sweep: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sweep.swept_keys or ["member"]
    done = [r for r in table if isinstance(r.get(metric), (int, float))]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        groups: dict[str, list[tuple[Any, float]]] = {}
        others = [k for k in keys if k != key]
        for r in done:
            label = ", ".join(f"{k}={r.get(k)}" for k in others) or metric
            groups.setdefault(label, []).append((r.get(key), r[metric]))
        for label, points in groups.items():
            points.sort(key=lambda p: (isinstance(p[0], str), p[0]))
            xs = [str(p[0]) if not isinstance(p[0], (int, float)) else p[0] for p in points]
            ax.plot(xs, [p[1] for p in points], marker="o", label=label)
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        if all(isinstance(r.get(key), (int, float)) and r.get(key) > 0 for r in done) and key.endswith("lr"):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(f"sweep {sweep.sweep_id}: {metric} by swept key")
    fig.tight_layout()
    fig.savefig(sweep.folder / "results.png", dpi=110)
    plt.close(fig)
