"""Run one sweep member in its own process (for `--max-parallel`): `python -m rscale.sweeps.member PIPELINE FINGERPRINT OUT`.

The parent has already taken the data fingerprint and registered the stack; the child runs the member's
emitted pipeline without deploying and writes the run's outcome as JSON to OUT.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(pipeline_file: str, fingerprint: str, out: str) -> None:
    from rscale.paths import use_project_state

    use_project_state()  # before zenml is imported: the parent's store, not the user's home
    from rscale.compiler.emit import load_emitted
    from rscale.stages.runner import run_compiled

    module = load_emitted(Path(pipeline_file).parent)
    outcome = run_compiled(module.PLAN_FILE, module.PIPELINE_OPTIONS, fingerprint, deploy=False)
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(outcome.model_dump_json(indent=2))
    tmp.replace(out)  # the parent reads OUT only once it is whole


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.splitlines()[0])
    main(*sys.argv[1:4])
