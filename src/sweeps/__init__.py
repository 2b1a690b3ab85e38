"""Sweeps: one plan per member of a Hydra-style grid, run one by one (or side by side), resumable.

A sweep's id is derived from its members' plan hashes, so running the same command again resumes it:
finished members are skipped, and killing a sweep loses only the member that was running. Data steps are
shared by every member through ZenML's cache (their inputs do not depend on the swept training keys).
"""

from rscale.sweeps.run import Sweep, emit_sweep, find_sweep, run_sweep

__all__ = ["Sweep", "emit_sweep", "find_sweep", "run_sweep"]
