"""Two `rs run` of one use case at once: the second refuses at once, naming the first, and writes nothing;
the lock dies with its process (SIGKILL leaves no stale lock)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rscale.cli.app import STATE, app
from rscale.cli.main import main  # noqa: F401  (registers every command module)
from rscale.run_lock import use_case_lock

HOLD = "import sys; from rscale.run_lock import use_case_lock\nwith use_case_lock(sys.argv[1]):\n    print('held', flush=True); sys.stdin.read()"


def test_a_second_run_refuses_while_the_first_holds_the_use_case(project: Path) -> None:
    first = subprocess.Popen([sys.executable, "-c", HOLD, "conversion"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "held"
        STATE["debug"] = False
        second = CliRunner().invoke(app, ["run", "specs/conversion.yaml", "--offline"])
        output = " ".join(second.output.split())
        assert second.exit_code == 6, output
        assert f"another `rs run` of `conversion` is running (pid {first.pid}" in output and "fix:" in output
        assert not (project / "build" / "conversion").exists()  # the refused run wrote nothing
        with use_case_lock("recs"):  # another use case is not held back
            pass
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    with use_case_lock("conversion"):  # the killed holder left no stale lock
        assert (project / ".rs" / "locks" / "conversion.owner").read_text().startswith("pid ")
