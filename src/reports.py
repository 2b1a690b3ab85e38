"""rscale's one report writer: a PNG of matplotlib panels and a self-contained HTML page that embeds it.

Runs (`build/<name>/report.*`), sweeps (`results.*`, from rscale.sweeps.report) and the monitor
(`monitor.*`, from rscale.monitoring.report) each decide what their report shows; this module decides how a
report is drawn and written, so every page looks alike, escapes alike and embeds its plot the same way.
The end-of-run report's content lives here too: it is the smallest, and only `rs run` writes it.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rscale.stages.artifacts import RunOutcome

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em} table{border-collapse:collapse}"
    " td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right} th{background:#f3f3f3}"
    " code{background:#f3f3f3;padding:.1em .3em} img{max-width:100%} .crossed{color:#b00;font-weight:bold}"
)


@dataclass
class Page:
    """A report page: its title, and body parts that are already HTML (build them with `text`, `table`, ...)."""

    title: str
    parts: list[str] = field(default_factory=list)
    png: bytes | None = None  # the plot, embedded after the parts
    alt: str = "plot"

    def add(self, *parts: str) -> Page:
        self.parts.extend(parts)
        return self

    def html(self) -> str:
        image = (
            f'<img alt="{html.escape(self.alt)}" src="data:image/png;base64,{base64.b64encode(self.png).decode()}">'
            if self.png
            else ""
        )
        return (
            f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>\n'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(self.parts) + f"\n{image}\n</body></html>\n"
        )


class Html(str):
    """A string that is already HTML: `text` keeps it as it is, where it escapes every other string."""


def text(tag: str, *pieces: str) -> Html:
    """One element holding `pieces` in order: plain strings escaped, `Html` ones (e.g. from `code`) kept."""
    inner = "".join(p if isinstance(p, Html) else html.escape(p) for p in pieces)
    return Html(f"<{tag}>{inner}</{tag}>")


def code(value: Any) -> Html:
    return Html(f"<code>{html.escape(str(value))}</code>")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], row_classes: Iterable[str] | None = None) -> str:
    """An HTML table of escaped cells: one header row, then one `<tr>` per row."""
    head = "<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in columns) + "</tr>"
    classes = iter(row_classes) if row_classes is not None else None
    body = "".join(
        (f'<tr class="{next(classes)}">' if classes is not None else "<tr>")
        + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display is needed, or opened)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_of(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes; the figure is closed, so a long process does not keep it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    return buffer.getvalue()


def write_report(folder: Path, stem: str, page: Page) -> dict[str, Path]:
    """Write `<stem>.html` (and `<stem>.png` when the page has a plot) into `folder`; return the paths by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"html": folder / f"{stem}.html"}
    if page.png:
        paths["png"] = folder / f"{stem}.png"
        paths["png"].write_bytes(page.png)
    paths["html"].write_text(page.html())
    return paths


def _run_plot(outcome: RunOutcome) -> bytes:
    """Loss and validation curves over epochs, and the model against its baseline on the test split."""
    plt = pyplot()
    history = outcome.training.history
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
    xs = range(len(metrics))
    axes[2].bar([x - 0.2 for x in xs], [outcome.metrics[m] for m in metrics], width=0.4, label="model")
    axes[2].bar(
        [x + 0.2 for x in xs], [outcome.baseline_metrics.get(m, 0.0) for m in metrics], width=0.4,
        label=f"baseline: {outcome.baseline}",
    )
    axes[2].set_xticks(list(xs), metrics)
    axes[2].set_title(f"test split ({'gate passed' if outcome.gate.passed else 'gate blocked'})")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"{outcome.name}: plan {outcome.plan_hash}")
    fig.tight_layout()
    return png_of(fig)


def write_run_report(outcome: RunOutcome, folder: Path) -> Path:
    """Write report.png and report.html for one run into `folder` (next to the emitted pipeline); return the HTML."""
    endpoint = outcome.deployment.endpoint.url if outcome.deployment.endpoint is not None else None
    page = Page(f"{outcome.name}: run report", png=_run_plot(outcome), alt="training curves and test metrics")
    page.add(
        text("h1", outcome.name),
        text("p", "plan ", code(outcome.plan_hash), ", ZenML run ", code(outcome.run_name), f", {outcome.seconds:.1f} s"),
        table(
            ["metric", "model", f"baseline: {outcome.baseline}"],
            ([m, f"{v:.4f}", f"{outcome.baseline_metrics.get(m, float('nan')):.4f}"] for m, v in outcome.metrics.items()),
        ),
        text("p", "gate: " + outcome.gate.reason),
        text("p", "deployment: served at ", code(endpoint)) if endpoint
        else text("p", "deployment: " + outcome.deployment.reason),
    )
    return write_report(folder, "report", page)["html"]
