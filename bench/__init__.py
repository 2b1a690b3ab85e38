"""Benchmarks: what rscale costs over the code a person would write by hand, layer by layer, as ratios.

    python -m bench all [--quick] [--out DIR]
    python -m bench NAME [--quick] [--out DIR]      NAME: compile, orchestration, training, ingest, serving, plan,
                                                    quality

Each benchmark module has `run(quick, work) -> Report` and may have `chart(report, path)`. Both sides of every
comparison run in the same process tree, on the same data, one after the other (interleaved where repeated),
with one torch intra-op thread (OMP_NUM_THREADS=1): this machine's 2 cores are shared.
"""

from __future__ import annotations

BENCHMARKS = {
    "compile": "bench.compile",
    "orchestration": "bench.orchestration",
    "training": "bench.training",
    "ingest": "bench.ingest",
    "serving": "bench.serving",
    "plan": "bench.plan",
    "quality": "bench.quality",
}
