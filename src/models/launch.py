"""The DDP child: `torchrun --nproc-per-node N -m rscale.models.launch <workdir>` runs this on every rank.

It reads the job `rscale.models.training` wrote to <workdir>/ddp (plan.json, train/validation Parquet),
trains with Lightning's DDP strategy under torchrun's environment, and rank 0 writes <workdir>/result.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import pyarrow.parquet as pq

    from rscale.compiler.plan import Plan
    from rscale.models.training import DDP_ACCELERATOR_ENV, DDP_JOB, RESULT, train_in_process

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m rscale.models.launch <workdir>", file=sys.stderr)
        return 2
    workdir = Path(args[0])
    job = workdir / DDP_JOB
    # the parent may have adjusted the plan (e.g. tests), so read it as written, without the hash check
    plan = Plan.model_validate_json((job / "plan.json").read_text())
    options = json.loads((job / "options.json").read_text())
    accelerator = os.environ.get(DDP_ACCELERATOR_ENV) or plan.hardware.accelerator
    result = train_in_process(
        plan,
        pq.read_table(job / "train.parquet"),
        pq.read_table(job / "validation.parquet"),
        workdir,
        progress=bool(options.get("progress")) and int(os.environ.get("RANK", "0")) == 0,
        accelerator=accelerator,
        devices=plan.hardware.devices,
        strategy="ddp",
    )
    if int(os.environ.get("RANK", "0")) == 0:
        (workdir / RESULT).write_text(result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
