"""Errors rscale reports to people at run time (a spec's own mistakes are `compiler.errors.SpecError`)."""

from __future__ import annotations


class RscaleError(Exception):
    """A failure with a message for people and, where there is one, the fix. Never carries a secret."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class DataCheckFailed(RscaleError):
    exit_code = 3


class ConfigurationError(RscaleError):
    exit_code = 2
