"""The monitor report as files: build/<name>/monitor.json (the figures), monitor.png and monitor.html.

One function writes the three, so they always show the same numbers; the PNG and HTML go through rscale's
one report writer (rscale.reports), as the run and sweep reports do. The PNG has four panels: the live metric
over time next to the test metric the version was deployed with, PSI of every input and of the
predictions against the threshold, out-of-vocabulary shares served vs training, and request volume.
"""

from __future__ import annotations

from pathlib import Path

from rscale.monitoring.monitor import MonitorReport
from rscale.reports import Page, code, png_of, pyplot, table, text, write_report


def _plot(report: MonitorReport, max_psi: float, max_oov: float) -> bytes:
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    live, drift_ax, oov_ax, volume = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]

    points = [p for p in report.live_series if p.value is not None]
    if points:
        live.plot([p.start for p in points], [p.value for p in points], marker="o", label=f"live {report.live_metric}")
    if report.test_value is not None:
        live.axhline(report.test_value, color="tab:green", linestyle="--", label=f"test {report.test_value:.3f}")
    title = f"live {report.live_metric or 'metric'}"
    if report.live_value is not None:
        title += f": {report.live_value:.3f} on {report.outcomes:,} outcomes"
    live.set_title(title)
    live.set_ylim(bottom=0)
    if points or report.test_value is not None:
        live.legend(fontsize=8)
    live.grid(alpha=0.3)
    live.tick_params(axis="x", labelrotation=20, labelsize=7)

    names = [d.name for d in report.drift] + (["(prediction)"] if report.prediction_psi is not None else [])
    values = [d.psi or 0.0 for d in report.drift] + (
        [report.prediction_psi] if report.prediction_psi is not None else []
    )
    colors = ["tab:red" if v > max_psi else "tab:blue" for v in values]
    bars = drift_ax.barh(names, values, color=colors, height=0.5)
    drift_ax.bar_label(bars, fmt="%.3f", padding=3, fontsize=8)
    drift_ax.axvline(max_psi, color="tab:red", linestyle="--", label=f"max_psi {max_psi}")
    drift_ax.set_xlim(0, max([max_psi, *values]) * 1.25)
    drift_ax.set_title("drift: PSI, training vs served")
    drift_ax.invert_yaxis()
    drift_ax.legend(fontsize=8, loc="lower right")

    from matplotlib.ticker import PercentFormatter

    oov = [d for d in report.drift if d.oov_share is not None]
    ys = range(len(oov))
    trained = [d.train_oov_share or 0 for d in oov]
    served = [d.oov_share or 0 for d in oov]
    oov_ax.bar_label(
        oov_ax.barh([y - 0.2 for y in ys], trained, height=0.4, label="training"),
        labels=[f"{t:.1%}" for t in trained],
        padding=3,
        fontsize=8,
    )
    oov_ax.bar_label(
        oov_ax.barh(
            [y + 0.2 for y in ys],
            served,
            height=0.4,
            label="served",
            color=["tab:red" if s - t > max_oov else "tab:orange" for s, t in zip(served, trained, strict=True)],
        ),
        labels=[f"{s:.1%}" for s in served],
        padding=3,
        fontsize=8,
    )
    for y, t in zip(ys, trained, strict=True):
        oov_ax.plot([t + max_oov] * 2, [y - 0.45, y + 0.45], color="tab:red", linestyle="--")
    oov_ax.set_xlim(0, max([max_oov, *served, *trained]) * 1.3)
    oov_ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    oov_ax.set_yticks(list(ys), [d.name for d in oov])
    oov_ax.set_title(f"out-of-vocabulary share (dashed: training + {max_oov:.0%})")
    oov_ax.invert_yaxis()
    oov_ax.legend(fontsize=8, loc="lower right")

    if report.volume_series:
        volume.bar(
            [p.start for p in report.volume_series],
            [p.count for p in report.volume_series],
            width=_bar_width(report),
        )
    traffic = f"{report.predictions:,} predictions in {report.requests:,} requests"
    if report.latency_ms_p99 is not None:
        traffic += f", p99 {report.latency_ms_p99:.1f} ms"
    if report.error_rate is not None:
        traffic += f", errors {report.error_rate:.2%}"
    volume.set_title(traffic)
    volume.tick_params(axis="x", labelrotation=20, labelsize=7)
    volume.grid(alpha=0.3)

    verdict = f"{len(report.alarms)} threshold(s) crossed" if report.alarms else "all thresholds hold"
    window = f"{report.since:%Y-%m-%d %H:%M} to {report.until:%H:%M} UTC"
    fig.suptitle(
        f"rs monitor {report.name}: version {report.endpoint_version}, {window}: {verdict}",
        color="tab:red" if report.alarms else "black",
    )
    fig.tight_layout()
    return png_of(fig)


def _bar_width(report: MonitorReport) -> float:
    series = report.volume_series
    if len(series) < 2:
        return 0.01
    return (series[1].start - series[0].start).total_seconds() / 86400 * 0.8


def write_monitor_report(report: MonitorReport, folder: Path, *, max_psi: float, max_oov: float) -> dict[str, Path]:
    """Write monitor.json, monitor.png and monitor.html into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "monitor.json"
    json_path.write_text(report.model_dump_json(indent=2) + "\n")
    page = Page(f"{report.name} monitor", png=_plot(report, max_psi, max_oov), alt="live metric, drift, OOV and volume")
    page.add(
        text("h1", f"{report.name}: version {report.endpoint_version}"),
        text(
            "p",
            f"window {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC; registered as ",
            code(report.registered_version),
        ),
        text("h2", "Thresholds"),
        table(
            ["", "check", "detail"],
            (["CROSSED" if c.crossed else "ok", c.check, c.detail] for c in report.checks),
            row_classes=("crossed" if c.crossed else "ok" for c in report.checks),
        ),
    )
    if report.notes:
        page.add(text("h2", "Notes"), "<ul>" + "".join(text("li", n) for n in report.notes) + "</ul>")
    return {"json": json_path, **write_report(folder, "monitor", page)}
