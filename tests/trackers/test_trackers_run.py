"""What every tracker kind shares: flattening, failure bookkeeping, re-open fallback, and a light package import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rscale.trackers import open_run
from rscale.trackers.base import MAX_FAILURES_IN_A_ROW, DetachedRun, as_text, flatten
from rscale.trackers.none import NoTracker


class FlakyRun(NoTracker):
    """A run whose backend rejects metrics with a message that quotes a secret, and remembers its final status."""

    def __init__(self) -> None:
        super().__init__("flaky", redact=("s3cret",))
        self.status: str | None = None

    def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None:
        raise ConnectionError("server at https://u:s3cret@host went away")

    def _close(self, status: str) -> None:
        self.status = status


def test_nested_params_flatten_with_dots_and_read_as_text():
    tree = {"train": {"lr": 0.003, "early_stopping": {"patience": 3}}, "model": {"hidden": [32, 16]}, "swept": {}}
    assert flatten(tree) == {
        "train.lr": 0.003,
        "train.early_stopping.patience": 3,
        "model.hidden": [32, 16],
        "swept": {},
    }
    assert [as_text(v) for v in (0.003, [32, 16], None, True, "x", {})] == [
        "0.003",
        "[32, 16]",
        "null",
        "true",
        "x",
        "{}",
    ]


def test_failures_are_counted_redacted_and_stop_after_a_few_in_a_row():
    run = FlakyRun()
    for step in range(MAX_FAILURES_IN_A_ROW + 2):
        run.log_metrics({"loss": 1.0}, step=step)  # never raises
    run.log_metrics({"loss": "high"})  # not a number: reported, not raised
    run.close()
    assert run.status == "FINISHED"  # closing is tried even after the run gave up on logging
    assert run.errors == [
        f"log_metrics: ConnectionError: server at https://u:***@host went away (x{MAX_FAILURES_IN_A_ROW})",
        "log_metrics: loss: str is not a number",
        "2 logging call(s) skipped: the tracker failed 3 times in a row",  # the non-number never reached it
    ]


def test_a_run_used_as_a_context_closes_failed_on_an_exception():
    with pytest.raises(ValueError):
        with FlakyRun() as run:
            raise ValueError("training broke")
    assert run.status == "FAILED" and run.closed


def test_a_run_that_cannot_be_reopened_does_not_stop_the_step(project, compile_plan):
    plan = compile_plan()
    run = open_run(plan, "conversion-evaluate", run_id="0123456789abcdef0123456789abcdef")
    assert isinstance(run, DetachedRun) and run.kind == "mlflow"
    run.log_metrics({"final.auc": 0.8})
    run.set_tags({"rscale.gate": "passed"})
    run.close()
    assert run.errors[0].startswith("open: RscaleError: MLflow tracking store")
    assert run.errors[-1] == "2 logging call(s) skipped: the run could not be re-opened"


def test_the_lightning_logger_hands_hyperparameters_and_metrics_to_the_run():
    class Recording(NoTracker):
        def __init__(self) -> None:
            super().__init__("r")
            self.seen: list[Any] = []

        def _log_params(self, params: dict[str, Any]) -> None:
            self.seen.append(params)

        def _log_metrics(self, metrics: dict[str, float], step: int | None) -> None:
            self.seen.append((step, metrics))

    from argparse import Namespace

    import torch

    from rscale.trackers.lightning_logger import TrackerLogger

    run = Recording()
    logger = TrackerLogger(run)
    logger.log_hyperparams(Namespace(lr=0.1, layers={"hidden": 4}))
    logger.log_metrics({"val_loss": torch.tensor(0.25)}, step=7)
    logger.finalize("success")
    assert run.seen == [{"hparams.lr": 0.1, "hparams.layers.hidden": 4}, (7, {"val_loss": 0.25})]
    assert not run.closed and logger.version == "r"


def test_importing_the_package_stays_light(repo: Path):
    heavy = ("mlflow", "neptune", "torch", "pytorch_lightning", "zenml", "sqlalchemy")
    code = f"import sys, rscale.trackers; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_log_dict_stores_json_under_one_name_with_or_without_the_suffix():
    class Recording(NoTracker):
        def __init__(self) -> None:
            super().__init__("r")
            self.documents: dict[str, Any] = {}

        def _log_dict(self, name: str, data: Any) -> None:
            self.documents[name] = data

    run = Recording()
    run.log_dict("checks.json", {"when": Path("/x"), "ok": (1, 2)})
    run.log_dict("evaluation", {"auc": 0.8})
    assert run.documents == {"checks": {"when": "/x", "ok": [1, 2]}, "evaluation": {"auc": 0.8}}
