"""Run one sweep member in its own process: `python -m rscale.sweeps.member PIPELINE FINGERPRINT OUT`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main(pipeline_file: str, fingerprint: str, out: str) -> None:
    from rscale.stages.runner import run_compiled

    spec = importlib.util.spec_from_file_location("rscale_member", pipeline_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outcome = run_compiled(module.PLAN_FILE, module.PIPELINE_OPTIONS, fingerprint, deploy=False)
    Path(out).write_text(outcome.model_dump_json(indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:4])
