"""Errors rscale reports to people at run time (a spec's own mistakes are `compiler.errors.SpecError`).

`rs` exit codes (README "Exit codes"): 0 done; 1 a run-time error; 2 a mistake in the spec or the
configuration; 3 a data check failed; 4 the gate blocked the model; 130 interrupted.
"""

from __future__ import annotations


class RscaleError(Exception):
    """A failure with a message for people and, where there is one, the fix. Never carries a secret."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


EXIT_GATE_BLOCKED = 4  # `rs run`: the model did not beat the baseline (or the champion), so nothing was deployed
EXIT_MONITOR_ALARM = 5  # `rs monitor`: a threshold of the spec's `monitor:` section was crossed
EXIT_RUN_IN_PROGRESS = 6  # `rs run`: another run of the same use case holds its lock


class DataCheckFailed(RscaleError):
    exit_code = 3


class ConfigurationError(RscaleError):
    exit_code = 2
