"""When a run of an unchanged plan resumes training (issue 14, stumble 5): a killed run of the same plan and
data resumes from its checkpoint; a finished one starts from scratch unless --resume-training asks."""

from __future__ import annotations

import json
from pathlib import Path

from rscale.models.training import CHECKPOINTS, LAST
from rscale.stages.model import RUN_STATE, finish_training, start_training


def _checkpoint(workdir: Path) -> Path:
    last = workdir / CHECKPOINTS / LAST
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_bytes(b"weights")
    return last


def test_first_run_starts_fresh_and_records_it_is_unfinished(tmp_path: Path) -> None:
    assert start_training(tmp_path, "fp1", resume=False) == "starting fresh"
    assert json.loads((tmp_path / RUN_STATE).read_text()) == {"fingerprint": "fp1", "finished": False}


def test_a_finished_run_is_not_resumed(tmp_path: Path) -> None:
    start_training(tmp_path, "fp1", resume=False)
    last = _checkpoint(tmp_path)
    finish_training(tmp_path, "fp1")
    decision = start_training(tmp_path, "fp1", resume=False)
    assert decision.startswith("starting fresh (the last run of this plan finished")
    assert "--resume-training" in decision
    assert not last.exists()  # training.py resumes whenever last.ckpt exists: it is gone


def test_a_killed_run_of_the_same_data_resumes(tmp_path: Path) -> None:
    start_training(tmp_path, "fp1", resume=False)
    last = _checkpoint(tmp_path)  # ... and the process was killed: no finish recorded
    assert start_training(tmp_path, "fp1", resume=False) == "resuming a killed run of this plan from its last checkpoint"
    assert last.exists()


def test_a_killed_run_on_other_data_starts_fresh(tmp_path: Path) -> None:
    start_training(tmp_path, "fp1", resume=False)
    last = _checkpoint(tmp_path)
    assert start_training(tmp_path, "fp2", resume=False).startswith("starting fresh (the data changed")
    assert not last.exists()


def test_resume_training_continues_a_finished_run(tmp_path: Path) -> None:
    start_training(tmp_path, "fp1", resume=False)
    last = _checkpoint(tmp_path)
    finish_training(tmp_path, "fp1")
    assert start_training(tmp_path, "fp1", resume=True).startswith("resuming from the last checkpoint")
    assert last.exists()
