"""How long `rs validate` takes, against a bare interpreter start: the target is < 0.3 s over `python -c pass`.

    python bench/validate_speed.py [--repeats 15] [--quick] [--out bench/results/validate.json]

Each case runs as a fresh process (what a person waits for), offline (no data contract, no warehouse).
Prints a table of median/min/max wall seconds and the median over the bare start, and writes JSON.
`rs` is invoked through `rscale.cli.main` with the validate command module imported, so the figure holds
whether or not main.py already imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_OVER_BARE_S = 0.3
RS = "import sys; import rscale.cli.main as m; import rscale.cli.spec; sys.argv = ['rs', *sys.argv[1:]]; m.main()"


def cases() -> dict[str, list[str]]:
    python = sys.executable
    return {
        "python -c pass": [python, "-c", "pass"],
        "rs --help": [python, "-c", RS, "--help"],
        "rs validate recs --offline": [python, "-c", RS, "validate", "specs/recs.yaml", "--offline"],
        "rs validate conversion --offline": [python, "-c", RS, "validate", "specs/conversion.yaml", "--offline"],
        "rs validate recs train.lr=0.01 --offline": [
            python, "-c", RS, "validate", "specs/recs.yaml", "train.lr=0.01", "--offline"
        ],
    }


def time_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system) of the child: steadier on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[3:]) or command}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 repeats, for a smoke check")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "validate.json")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="rs-bench-") as project:
        env = {**os.environ, "RS_PROJECT_DIR": project, "RS_STACKS_DIR": str(REPO / "stacks")}
        commands = cases()
        for command in commands.values():  # warm the OS file cache and .pyc files once
            time_once(command, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(repeats):  # interleaved, so background load hits every case alike
            for name, command in commands.items():
                wall, used = time_once(command, env)
                samples[name].append(wall)
                cpu[name].append(used)
    bare = statistics.median(samples["python -c pass"])
    bare_cpu = statistics.median(cpu["python -c pass"])
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append({
            "case": name, "median_s": round(median, 4), "min_s": round(min(values), 4),
            "max_s": round(max(values), 4), "over_bare_s": round(median - bare, 4),
            "cpu_median_s": round(statistics.median(cpu[name]), 4),
            "cpu_over_bare_s": round(statistics.median(cpu[name]) - bare_cpu, 4), "repeats": len(values),
        })
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':<{width}}  median_s  min_s   max_s   over_bare_s  cpu_s   cpu_over_bare_s")
    for r in rows:
        print(f"{r['case']:<{width}}  {r['median_s']:<8.3f}  {r['min_s']:<6.3f}  {r['max_s']:<6.3f}  "
              f"{r['over_bare_s']:<11.3f}  {r['cpu_median_s']:<6.3f}  {r['cpu_over_bare_s']:.3f}")
    worst = max(r["over_bare_s"] for r in rows if r["case"].startswith("rs validate"))
    print(f"target: rs validate < {TARGET_OVER_BARE_S} s over bare python; worst here: {worst:.3f} s "
          f"({'met' if worst < TARGET_OVER_BARE_S else 'NOT met'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "bench": "validate_speed",
        "python": platform.python_version(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "target_over_bare_s": TARGET_OVER_BARE_S,
        "worst_validate_over_bare_s": worst,
        "met": worst < TARGET_OVER_BARE_S,
        "load_average_1m": os.getloadavg()[0],
        "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
