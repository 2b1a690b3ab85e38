"""Print the committed results as Markdown tables, for BENCHMARKS.md: `python -m bench.markdown [DIR]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import BENCHMARKS
from bench.report import fmt

RESULTS = Path(__file__).resolve().parent / "results"


def speed(machine: dict) -> str:
    """The machine's speed probe (bench.report.speed_probe), where the run recorded one."""
    probe = machine.get("speed")
    if not probe:
        return ""
    return (f"; machine: bare python start {probe['bare_python_start_s']} s, first touch of memory "
            f"{probe['first_touch_us_per_page']} us per 4 KiB page, 2M-step Python loop {probe['python_loop_2m_s']} s")


def tables(folder: Path) -> str:
    lines: list[str] = []
    for name in BENCHMARKS:
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        lines += [f"#### {data['title']}", "", f"Run {data['date']}, {data['seconds']} s, load average "
                  f"{' / '.join(map(str, data['machine']['load_average']))} at the end{speed(data['machine'])}.", ""]
        lines += ["| goal | figure | target | met |", "|---|---:|---|---|"]
        for c in data["comparisons"]:
            met = "-" if c["met"] is None else ("yes" if c["met"] else "**no**")
            lines.append(f"| {c['what']} | {fmt(c['value'])} {c['unit']} | {c['target']} | {met} |")
        lines += ["", "| case | unit | median | min | max | runs |", "|---|---|---:|---:|---:|---:|"]
        for r in data["rows"]:
            lines.append(f"| {r['case']} | {r['unit']} | {fmt(r['median'])} | {fmt(r['min'])} | "
                         f"{fmt(r['max'])} | {r['runs']} |")
        lines += [""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(tables(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS))
