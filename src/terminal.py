"""The consoles rscale prints through: a terminal's own width, or one long line per line when not a terminal.

Rich wraps at 80 columns when output goes to a file or a pipe; then a printed `rs predict ...` command or a
JSON example would break across lines and could not be pasted. So a console that is not a terminal gets a
width no line reaches, and soft wrapping (no wrapping of plain text at all).

Neither console replaces `:name:` emoji codes: rscale prints names, paths and SQL as written (an emoji code in
them is data, not decoration), and not loading rich's table of emoji codes saves every command ~10 ms.
"""

from __future__ import annotations

import sys

from rich.console import Console

UNWRAPPED_WIDTH = 10_000  # columns of a console that is not a terminal: wide enough that nothing wraps


def make_console(*, stderr: bool = False) -> Console:
    """A rich Console for stdout (or stderr): the terminal's width, or never wrapping when redirected."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False, emoji=False)
    return Console(stderr=stderr, highlight=False, emoji=False, width=UNWRAPPED_WIDTH, soft_wrap=True)
