"""One benchmark's figures: repeated samples per case, ratios against the hand-written baseline, goals.

Every benchmark fills a `Report`; `finish` prints one rich table of medians with min and max, writes
`<out>/<name>.json` and renders `<out>/<name>.png` (matplotlib, Agg), which BENCHMARKS.md embeds.
"""

from __future__ import annotations

import json
import mmap
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON_KEYS = ("bench", "title", "quick", "date", "machine", "settings", "rows", "comparisons", "notes")
ROW_KEYS = ("case", "unit", "median", "min", "max", "runs")
COMPARISON_KEYS = ("what", "value", "unit", "target", "goal", "higher_is_better", "met")


def machine() -> dict[str, Any]:
    """Where the figures came from: CPU model, cores, load at the time, library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        info["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info["speed"] = speed_probe()
    return info


def speed_probe(mebibytes: int = 128) -> dict[str, float]:
    """How fast this machine is at the moment, on three things rscale's figures depend on: a fixed pure-Python
    loop, touching memory for the first time (a page fault per 4 KiB page; on this VM the host backs guest
    memory lazily, and the cost per page has varied from day to day), and a bare interpreter start. Ratios
    against a baseline in the same run cancel most of it; absolute goals (seconds over a bare start) do not,
    so every result records it beside the load average."""
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    loop_s = time.perf_counter() - start
    pages = mebibytes * 256
    region = mmap.mmap(-1, pages * 4096)
    start = time.perf_counter()
    for offset in range(0, pages * 4096, 4096):
        region[offset] = 1
    first_touch_s = time.perf_counter() - start
    start = time.perf_counter()
    for offset in range(0, pages * 4096, 4096):
        region[offset] = 2
    retouch_s = time.perf_counter() - start
    region.close()
    starts = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=False)
        starts.append(time.perf_counter() - start)
    return {
        "python_loop_2m_s": round(loop_s, 4),
        "first_touch_us_per_page": round((first_touch_s - retouch_s) / pages * 1e6, 3),
        "bare_python_start_s": round(statistics.median(starts), 4),
    }


def summarise(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


@dataclass
class Report:
    """Figures of one benchmark run. `row` adds a measured case; `compare` a ratio (or figure) with its goal."""

    name: str
    title: str
    quick: bool
    settings: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # per-benchmark data the chart or readers need
    started: float = field(default_factory=time.time)

    def row(self, case: str, unit: str, values: list[float], **detail: Any) -> dict[str, Any]:
        entry = {"case": case, "unit": unit, **summarise(values), "values": values, **detail}
        self.rows.append(entry)
        return entry

    def median(self, case: str) -> float:
        return next(r["median"] for r in self.rows if r["case"] == case)

    def compare(
        self,
        what: str,
        value: float,
        goal: float | None,
        *,
        unit: str = "x",
        higher_is_better: bool = True,
        target: str | None = None,
        detail: str = "",
    ) -> dict[str, Any]:
        """A figure against its goal: `met` is None when there is no goal, else whether it is met."""
        met = None if goal is None else (value >= goal if higher_is_better else value <= goal)
        sign = ">=" if higher_is_better else "<="
        entry = {
            "what": what,
            "value": value,
            "unit": unit,
            "target": target or (f"{sign} {goal:g} {unit}" if goal is not None else "-"),
            "goal": goal,
            "higher_is_better": higher_is_better,
            "met": met,
            "detail": detail,
        }
        self.comparisons.append(entry)
        return entry

    def as_json(self) -> dict[str, Any]:
        return {
            "bench": self.name,
            "title": self.title,
            "quick": self.quick,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "machine": machine(),
            "settings": self.settings,
            "rows": self.rows,
            "comparisons": self.comparisons,
            "notes": self.notes,
            "extra": self.extra,
        }


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.3f}"
    if magnitude >= 0.001:
        return f"{value:.4f}"
    return f"{value:.1e}"


def print_report(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=130)
    table = Table(title=f"{report.title}{' (quick)' if report.quick else ''}", title_justify="left")
    for column, justify in (("case", "left"), ("unit", "left"), ("median", "right"), ("min", "right"),
                            ("max", "right"), ("runs", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in report.rows:
        table.add_row(r["case"], r["unit"], fmt(r["median"]), fmt(r["min"]), fmt(r["max"]), str(r["runs"]))
    if report.comparisons:
        table.add_section()
        for c in report.comparisons:
            verdict = "-" if c["met"] is None else ("[green]met[/]" if c["met"] else "[red]NOT met[/]")
            table.add_row(f"[bold]{c['what']}[/]", c["unit"], fmt(c["value"]), f"goal {c['target']}", verdict, "")
    console.print(table)
    for note in report.notes:
        console.print(f"  note: {note}", markup=False)


def write_report(report: Report, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{report.name}.json"
    path.write_text(json.dumps(report.as_json(), indent=2, default=float) + "\n")
    return path


def ratio_chart(report: Report, path: Path) -> None:
    """Default chart: each comparison as a bar against its goal line, one panel per comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comparisons = report.comparisons or [{"what": "no comparisons", "value": 0, "goal": None, "unit": ""}]
    fig, axes = plt.subplots(1, len(comparisons), figsize=(2.6 * len(comparisons) + 1, 3.4), squeeze=False)
    for ax, c in zip(axes[0], comparisons, strict=True):
        colour = "#888888" if c.get("met") is None else ("#2e7d32" if c["met"] else "#c62828")
        ax.bar([0], [c["value"]], color=colour, width=0.6)
        if c.get("goal") is not None:
            ax.axhline(c["goal"], color="black", linestyle="--", linewidth=1)
            ax.text(0.32, c["goal"], f"goal {c['goal']:g}", va="bottom", ha="right", fontsize=7)
        ax.set_xticks([])
        ax.set_title(_wrap(c["what"], 24), fontsize=8)
        ax.set_ylabel(c.get("unit", ""), fontsize=8)
        ax.text(0, c["value"], fmt(c["value"]), ha="center", va="bottom", fontsize=8)
        top = max(c["value"], c.get("goal") or 0) * 1.25 or 1
        ax.set_ylim(0, top)
        ax.tick_params(labelsize=7)
    fig.suptitle(report.title + (" (quick)" if report.quick else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def paired_chart(report: Report, path: Path, pairs: list[tuple[str, str, str]], ylabel: str) -> None:
    """Bars of measured cases side by side with min-max whiskers: pairs of (label, ours case, baseline case)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["case"]: r for r in report.rows}
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(pairs) + 1.5), 3.6))
    width = 0.38
    for side, (offset, colour, label) in enumerate(((-width / 2, "#1565c0", "rscale"), (width / 2, "#9e9e9e", "hand-written"))):
        xs, heights, low, high = [], [], [], []
        for i, pair in enumerate(pairs):
            r = rows.get(pair[1 + side])
            if r is None:
                continue
            xs.append(i + offset)
            heights.append(r["median"])
            low.append(r["median"] - r["min"])
            high.append(r["max"] - r["median"])
        ax.bar(xs, heights, width, color=colour, label=label, yerr=[low, high], capsize=3)
    ax.set_xticks(range(len(pairs)), [_wrap(p[0], 18) for p in pairs], fontsize=7)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title(report.title + (" (quick)" if report.quick else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text
