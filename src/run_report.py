"""The end-of-run report: training curves over epochs and the model against its baseline.

Written next to the emitted pipeline as `build/<name>/report.png` and a self-contained `report.html`
(the plot embedded, with the metrics table, the gate decision and where the model is served).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any


def _plot(outcome: Any) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history: list[dict[str, float]] = outcome.training.get("history") or []
    curves = sorted({k for row in history for k in row if k.startswith(("train_", "val_")) and k != "train_seconds"})
    losses = [c for c in curves if c.endswith("loss")]
    scores = [c for c in curves if c not in losses]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, names, title in ((axes[0], losses, "loss"), (axes[1], scores, "validation metrics")):
        for name in names:
            points = [(row.get("epoch", i), row[name]) for i, row in enumerate(history) if name in row]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if names:
            ax.legend(fontsize=7)
    metrics = list(outcome.metrics)
    model = [outcome.metrics[m] for m in metrics]
    base = [outcome.baseline_metrics.get(m, 0.0) for m in metrics]
    xs = range(len(metrics))
    axes[2].bar([x - 0.2 for x in xs], model, width=0.4, label="model")
    axes[2].bar([x + 0.2 for x in xs], base, width=0.4, label=f"baseline: {outcome.baseline}")
    axes[2].set_xticks(list(xs), metrics)
    axes[2].set_title(f"test split ({'gate passed' if outcome.gate.get('passed') else 'gate blocked'})")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"{outcome.name}: plan {outcome.plan_hash}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_run_report(outcome: Any, folder: Path) -> Path:
    """Write report.png and report.html for one run into `folder`; return the HTML's path."""
    png = _plot(outcome)
    (folder / "report.png").write_bytes(png)
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{v:.4f}</td><td>{outcome.baseline_metrics.get(m, float('nan')):.4f}</td></tr>"
        for m, v in outcome.metrics.items()
    )
    endpoint = (outcome.deployment.get("endpoint") or {}).get("url")
    served = f"served at <code>{html.escape(endpoint)}</code>" if endpoint else html.escape(outcome.deployment.get("reason", ""))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(outcome.name)}: run report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}</style>
</head><body>
<h1>{html.escape(outcome.name)}</h1>
<p>plan <code>{outcome.plan_hash}</code>, ZenML run <code>{html.escape(outcome.run_name)}</code>, {outcome.seconds:.1f} s</p>
<table><tr><th>metric</th><th>model</th><th>baseline: {html.escape(outcome.baseline)}</th></tr>{rows}</table>
<p><b>gate:</b> {html.escape(outcome.gate.get("reason", ""))}</p>
<p><b>deployment:</b> {served}</p>
<img alt="training curves and test metrics" src="data:image/png;base64,{base64.b64encode(png).decode()}">
</body></html>
"""
    path = folder / "report.html"
    path.write_text(page)
    return path
