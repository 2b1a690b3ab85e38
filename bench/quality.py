"""Quality: the model and every baseline on datasets of different structure, with the gate's decision.

One row per (dataset, model or baseline): its metrics on the test split, and for the model the gate's
decision against the strongest baseline with the paired bootstrap interval of the lift; seconds to fit and
score. Everything runs through the library as `rs run` does (compile the spec offline, split as the spec
says, train with the spec's settings, evaluate) minus the pipeline and the warehouse.

Datasets register with `@dataset(name)`: a function `(quick) -> Dataset` giving a table and the spec that
reads it. The tables here are the small ones scikit-learn ships (breast cancer: binary, 569 rows; wine:
multiclass, 178 rows; diabetes: regression, 442 rows), each run with the tabular model's DEFAULT training
settings (the spec sets no train block) and the task's default baselines. The random split of 10%
validation and 20% test gives breast cancer exactly the 455 train+validation / 114 test rows of issue 12.
Session datasets run `specs/recs.yaml` exactly as shipped on the demo generator (`rs seed`'s shop) and on
the two generators of other structure in bench/generators.py, with the ranking baselines (popularity,
item_to_item, session_knn), all scored on every next-item position of the test sessions (the same
prefixes for the model and each baseline; the interval resamples sessions: docs/evaluation.md).

    python -m bench quality [--quick]          figures to bench/results/quality.{json,png}
    python -m bench.quality [DIR]              the Markdown table for BENCHMARKS.md, from DIR's quality.json
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.report import Report

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


@dataclass
class Dataset:
    """A table and the spec that reads it (YAML text, or a spec file with overrides)."""

    name: str
    table: pa.Table
    spec_text: str | None = None
    spec_path: Path | None = None
    overrides: list[str] = field(default_factory=list)
    about: str = ""


DATASETS: dict[str, Callable[[bool], Dataset]] = {}


def dataset(name: str) -> Callable[[Callable[[bool], Dataset]], Callable[[bool], Dataset]]:
    """Register a dataset maker under `name` (the row label in the results)."""

    def decorate(make: Callable[[bool], Dataset]) -> Callable[[bool], Dataset]:
        if name in DATASETS:
            raise ValueError(f"quality dataset {name!r} is registered twice")
        DATASETS[name] = make
        return make

    return decorate


# --- tables scikit-learn ships ----------------------------------------------------------------------
def table_spec(name: str, table: pa.Table, target: str, target_type: str, metrics: list[str], gate: str) -> str:
    """A spec for a table of numeric inputs: tabular model and training with every default, default baselines."""
    inputs = "\n".join(f"    - {{name: {column}, type: numeric}}" for column in table.column_names if column != target)
    return f"""spec_version: 1
name: {name.replace("_", "-")}
data:
  query: SELECT * FROM {name}
features:
  inputs:
{inputs}
  target: {{name: {target}, type: {target_type}}}
split: {{by: random, validation: 0.1, test: 0.2}}
model: {{type: tabular}}
evaluate:
  metrics: [{", ".join(metrics)}]
  gate: {{metric: {gate}, min_lift: 0.0}}
tracker: {{kind: none}}
"""


def sklearn_table(loader: str, target: str, as_label: bool) -> pa.Table:
    """A scikit-learn toy dataset as an Arrow table with clean column names (the target as int or string)."""
    import numpy as np
    import sklearn.datasets

    data = getattr(sklearn.datasets, loader)()
    names = [
        "".join(c if c.isalnum() else "_" for c in str(n).lower()).strip("_") or f"x{i}"
        for i, n in enumerate(data.feature_names)
    ]
    columns: dict[str, Any] = {n: np.asarray(data.data[:, i], dtype=np.float64) for i, n in enumerate(names)}
    y = np.asarray(data.target)
    columns[target] = pa.array([f"class_{v}" for v in y]) if as_label else y
    return pa.table(columns)


@dataset("breast_cancer")
def breast_cancer(quick: bool) -> Dataset:
    table = sklearn_table("load_breast_cancer", "malignant", as_label=False)
    # scikit-learn codes malignant as 0; 1 = malignant reads the usual way round
    table = table.set_column(table.schema.get_field_index("malignant"), "malignant",
                             pa.array(1 - table["malignant"].to_numpy()))
    spec = table_spec("breast_cancer", table, "malignant", "binary", ["auc", "accuracy"], "auc")
    return Dataset("breast_cancer", table, spec, about="binary, 569 rows x 30 numeric (Wisconsin diagnostic)")


@dataset("wine")
def wine(quick: bool) -> Dataset:
    table = sklearn_table("load_wine", "cultivar", as_label=True)
    spec = table_spec("wine", table, "cultivar", "categorical", ["accuracy", "log_loss"], "accuracy")
    return Dataset("wine", table, spec, about="multiclass (3), 178 rows x 13 numeric")


@dataset("diabetes")
def diabetes(quick: bool) -> Dataset:
    table = sklearn_table("load_diabetes", "progression", as_label=False)
    table = table.set_column(table.schema.get_field_index("progression"), "progression",
                             pa.array(table["progression"].to_numpy().astype("float64")))
    spec = table_spec("diabetes", table, "progression", "numeric", ["rmse", "r2"], "rmse")
    return Dataset("diabetes", table, spec, about="regression, 442 rows x 10 numeric")


# --- sessions: the demo generator and two of other structure ------------------------------------------
SESSIONS_SPEC = REPO / "specs" / "recs.yaml"


def sessions_dataset(name: str, events: pa.Table, about: str) -> Dataset:
    """The rows `specs/recs.yaml` as shipped reads from an `events` table: its own query (as transpiled for
    DuckDB) run over the events in an in-memory DuckDB, so the model sees exactly what `rs run` gives it."""
    import duckdb

    plan = plan_of(Dataset(name, pa.table({}), spec_path=SESSIONS_SPEC))
    connection = duckdb.connect()
    connection.register("events", events)
    table = connection.sql(plan.data.sql).to_arrow_table()
    connection.close()
    return Dataset(name, table, spec_path=SESSIONS_SPEC, about=about)


@dataset("sessions_demo")
def sessions_demo(quick: bool) -> Dataset:
    from rscale.data.seed import DEFAULT_SESSIONS, demo_tables

    sessions = 4_000 if quick else DEFAULT_SESSIONS
    _items, events = demo_tables(sessions=sessions, seed=0)
    return sessions_dataset("sessions_demo", events, f"`rs seed`'s shop, {sessions:,} sessions (rscale.data.seed)")


@dataset("sessions_markov_themes")
def sessions_markov_themes(quick: bool) -> Dataset:
    from bench.generators import markov_themes

    sessions = 4_000 if quick else 40_000
    return sessions_dataset(
        "sessions_markov_themes", markov_themes(sessions), f"themes x first-order transitions, {sessions:,} sessions"
    )


@dataset("sessions_latent_drift")
def sessions_latent_drift(quick: bool) -> Dataset:
    from bench.generators import latent_drift

    sessions = 3_000 if quick else 30_000
    return sessions_dataset(
        "sessions_latent_drift", latent_drift(sessions), f"drifting taste in a latent space, {sessions:,} sessions"
    )


# --- running one dataset ----------------------------------------------------------------------------
def plan_of(data: Dataset) -> Any:
    from rscale.compiler.compilation import compile_document, compile_spec
    from rscale.compiler.load import load_text

    if data.spec_text is not None:
        compiled = compile_document(load_text(data.spec_text, f"<{data.name}>"), data.overrides, offline=True)
    else:
        compiled = compile_spec(data.spec_path, data.overrides, offline=True)  # type: ignore[arg-type]
    return compiled.plans[0]


def evaluate_dataset(data: Dataset, work: Path) -> list[dict[str, Any]]:
    """Train the spec's model, evaluate it against the baselines; one result row per model or baseline."""
    import shutil

    from rscale.data.split import split_table
    from rscale.models.evaluation import evaluate
    from rscale.models.training import train

    plan = plan_of(data)
    parts = split_table(data.table, plan.split, plan.data.time_column, plan.train.seed, plan.features.id)
    workdir = work / data.name
    shutil.rmtree(workdir, ignore_errors=True)
    started = time.perf_counter()
    result = train(plan, parts.train, parts.validation, workdir, progress=False)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    evaluation = evaluate(result.package_dir, plan, parts.train, parts.test)
    evaluate_seconds = time.perf_counter() - started - sum(evaluation.baseline_seconds.values())
    gate = evaluation.gate
    common = {
        "dataset": data.name,
        "about": data.about,
        "rows": {"train": parts.train.num_rows, "validation": parts.validation.num_rows, "test": parts.test.num_rows},
        "gate_metric": gate.metric,
    }
    rows = [{
        **common,
        "who": f"model ({plan.model.type})",
        "metrics": evaluation.metrics,
        "seconds": train_seconds + evaluate_seconds,
        "gate": {
            "passed": gate.passed,
            "against": gate.baseline,
            "lift": gate.lift,
            "interval": gate.interval.model_dump() if gate.interval else None,
            "reason": gate.reason,
        },
        "training": {"epochs": result.epochs_run, "best_epoch": result.best_epoch, **result.settings},
        "warnings": evaluation.warnings + result.warnings,
    }]
    for name, metrics in evaluation.baselines.items():
        rows.append({
            **common,
            "who": name,
            "metrics": metrics,
            "seconds": evaluation.baseline_seconds[name],
            "strongest": name == evaluation.baseline,
        })
    return rows


def run(quick: bool, work: Path) -> Report:
    import torch

    torch.set_num_threads(1)
    report = Report("quality", "Model quality against the strongest fair baseline, with the gate's interval", quick)
    report.settings = {"datasets": list(DATASETS), "split": "as each spec says (tables: random 70/10/20)"}
    results: list[dict[str, Any]] = []
    for name, make in DATASETS.items():
        rows = evaluate_dataset(make(quick), work)
        results += rows
        for row in rows:
            metric = row["gate_metric"]
            report.row(f"{name}: {row['who']}", metric, [row["metrics"][metric]])
        model, baselines = rows[0], rows[1:]
        strongest = next((b for b in baselines if b.get("strongest")), None)
        if strongest is not None:
            metric = model["gate_metric"]
            interval = model["gate"]["interval"] or {}
            report.compare(
                f"{name}: model's lift on {metric} over the strongest baseline ({strongest['who']})",
                model["gate"]["lift"],
                0.0,
                unit=metric,
                detail=f"{interval.get('confidence', 0):.0%} interval [{interval.get('low', 0):+.4f}, "
                f"{interval.get('high', 0):+.4f}]" if interval else "",
            )
    report.extra["quality"] = results
    return report


def chart(report: Report, path: Path) -> None:
    """One panel per dataset: the gate metric of the model and each baseline, the model's interval as an error bar."""
    import matplotlib.pyplot as plt

    results = report.extra.get("quality", [])
    names = list(dict.fromkeys(r["dataset"] for r in results))
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(4 * max(len(names), 1), 3.4), squeeze=False)
    for axis, name in zip(axes[0], names, strict=False):
        rows = [r for r in results if r["dataset"] == name]
        metric = rows[0]["gate_metric"]
        labels = [r["who"] for r in rows]
        values = [r["metrics"].get(metric, float("nan")) for r in rows]
        colours = ["tab:blue"] + ["tab:orange" if r.get("strongest") else "tab:gray" for r in rows[1:]]
        axis.barh(labels, values, color=colours)
        interval = rows[0]["gate"]["interval"]
        strongest = next((r for r in rows[1:] if r.get("strongest")), None)
        if interval and strongest:
            base = strongest["metrics"][metric]
            sign = 1 if metric not in ("log_loss", "rmse", "mae") else -1
            low, high = sorted((base + sign * interval["low"], base + sign * interval["high"]))
            axis.plot([low, high], [0, 0], color="black", linewidth=2)
        axis.set_title(f"{name} ({'deploy' if rows[0]['gate']['passed'] else 'blocked'})", fontsize=9)
        axis.set_xlabel(metric)
        axis.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table: one row per dataset and model or baseline."""
    lines = [
        "| dataset | model / baseline | gate metric | value | other metrics | gate (vs strongest) | lift, 95% interval | s |",
        "|---|---|---|---:|---|---|---|---:|",
    ]
    for r in results:
        metric = r["gate_metric"]
        others = ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items() if k != metric)
        gate, lift = "", ""
        if "gate" in r:
            gate = ("deploy" if r["gate"]["passed"] else "**blocked**") + f" vs {r['gate']['against']}"
            interval = r["gate"]["interval"]
            if r["gate"]["lift"] is not None:
                lift = f"{r['gate']['lift']:+.4f}"
                if interval:
                    lift += f" [{interval['low']:+.4f}, {interval['high']:+.4f}]"
        who = f"**{r['who']}**" if r.get("strongest") else r["who"]
        lines.append(
            f"| {r['dataset']} | {who} | {metric} | {r['metrics'].get(metric, float('nan')):.4f} | {others} | "
            f"{gate} | {lift} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    print(markdown(json.loads((folder / "quality.json").read_text())["extra"]["quality"]))
