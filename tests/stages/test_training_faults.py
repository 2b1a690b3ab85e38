"""A training process killed with SIGKILL in the middle of its epochs resumes from its last checkpoint when
trained again in the same work folder: the epochs already done are not repeated, and the run finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# enough epochs that the run is still going 0.3 s after its first checkpoint on a fast machine: with 12, the
# Fabric loop (about 1 ms a step here) sometimes finished before the kill and wrote its package
EPOCHS = 40
OVERRIDES = [f"train.max_epochs={EPOCHS}", "train.batch_size=8", "train.early_stopping.patience=1000"]
CHILD = f"""
import sys
sys.path.insert(0, {str(REPO / "tests" / "serving")!r})
from tiny_package import conversion_plan, conversion_rows
from rscale.models.training import train
train(conversion_plan(*{OVERRIDES!r}), conversion_rows(256, 1), conversion_rows(64, 2), sys.argv[1], progress=False)
"""


def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "serving"))
    from tiny_package import conversion_plan, conversion_rows

    from rscale.models.training import train

    workdir = tmp_path / "train"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(workdir)], env=os.environ.copy(), stderr=subprocess.PIPE)
    last = workdir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not last.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.poll() is None, child.stderr.read().decode()[-2000:] if child.stderr else ""  # still training
    time.sleep(0.3)  # into a later epoch: the kill lands mid-epoch, after at least one checkpoint
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert not (workdir / "package").exists()  # it never finished

    result = train(conversion_plan(*OVERRIDES), conversion_rows(256, 1), conversion_rows(64, 2), workdir, progress=False)
    assert result.resumed_from == str(last)
    epochs = [int(entry["epoch"]) for entry in result.history]
    assert epochs == sorted(set(epochs)) and epochs[-1] == EPOCHS - 1  # each epoch once, through the last
    assert len([e for e in result.history if "train_seconds" in e]) <= EPOCHS
    assert (Path(result.package_dir) / "manifest.json").is_file()
