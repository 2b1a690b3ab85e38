"""One `rs run` of a use case at a time: a second one refuses at once, naming the first, instead of racing
it for build/<name>/, the warehouse file and ZenML's cache.

The lock is an OS file lock (filelock, flock on POSIX) on `.rs/locks/<name>.lock`, so it goes away with its
process, even one killed with SIGKILL: a crashed run never leaves a stale lock behind. Runs of other use
cases, and the members of one sweep, are not held back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rscale.errors import EXIT_RUN_IN_PROGRESS, RscaleError


class RunInProgress(RscaleError):
    exit_code = EXIT_RUN_IN_PROGRESS


@contextmanager
def use_case_lock(name: str) -> Iterator[None]:
    """Hold the run lock of use case `name` for the block; RunInProgress when another process holds it."""
    from filelock import FileLock, Timeout

    from rscale.paths import state_dir

    folder = state_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    owner = folder / f"{name}.owner"
    lock = FileLock(str(folder / f"{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = owner.read_text().strip()
        except OSError:
            holder = "a process that is starting"
        raise RunInProgress(
            f"another `rs run` of `{name}` is running ({holder})",
            fix="wait for it to finish, or stop that process, then run again; other use cases can run meanwhile",
        ) from None
    try:
        owner.write_text(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
