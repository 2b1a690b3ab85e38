"""What the steps hand each other, besides Arrow tables: small pydantic records and the model package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class PackageDir(BaseModel):
    """A model package directory (manifest.json, weights.pt, preprocess.json, model_config.json).

    ZenML stores it file by file in the artifact store (`PackageDirMaterializer`), so it is versioned
    with the run and readable by a remote step; loading gives a local copy.
    """

    path: str

    def manifest(self) -> dict[str, Any]:
        return json.loads((Path(self.path) / "manifest.json").read_text())


class TrainingSummary(BaseModel):
    """What the train step reports: the per-epoch history, speed and the tracker run it logged to."""

    history: list[dict[str, float]] = Field(default_factory=list)
    best_epoch: int | None = None
    epochs_run: int = 0
    samples_per_second: float = 0.0
    train_rows: int = 0
    tracker_run_id: str | None = None
    tracker_url: str | None = None
    tracker_errors: list[str] = Field(default_factory=list)


class Registration(BaseModel):
    model_name: str
    version: str
    stage: str | None = None


class Deployment(BaseModel):
    """The deploy step's outcome: the endpoint, or why nothing was deployed."""

    deployed: bool
    reason: str
    endpoint: dict[str, Any] | None = None
    example_request: dict[str, Any] | None = None
    example_response: dict[str, Any] | None = None
