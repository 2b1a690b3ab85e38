"""What the steps hand each other, besides Arrow tables: typed pydantic records and the model package.

Records stay typed until they are shown (ZenML stores them with its pydantic materializer): `Training` from the
train step, `Evaluation` (rscale.models.evaluation) from the evaluate step, `Registration`, `Deployment`, and
`RunOutcome`, what a whole run ends with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rscale.errors import EXIT_GATE_BLOCKED
from rscale.models.champion import ChampionDecision
from rscale.models.evaluation import GateDecision
from rscale.serving.endpoint import Endpoint


class PackageDir(BaseModel):
    """A model package directory (manifest.json, weights.pt, preprocess.json, model_config.json).

    ZenML stores it file by file in the artifact store (`PackageDirMaterializer`), so it is versioned
    with the run and readable by a remote step; loading gives a local copy.
    """

    path: str

    def manifest(self) -> dict[str, Any]:
        return json.loads((Path(self.path) / "manifest.json").read_text())


class Training(BaseModel):
    """What the train step hands on: where the package and checkpoint went, the best epoch and its validation
    metrics, the per-epoch history, speed, and the tracker run later steps log into."""

    package_dir: str = Field(description="Where the step wrote the package; later steps read ZenML's stored copy.")
    checkpoint: str | None = Field(None, description="The best epoch's Lightning checkpoint, on the step's machine.")
    best_epoch: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict, description="The best epoch's `val_...` metrics.")
    history: list[dict[str, float]] = Field(default_factory=list)
    epochs_run: int = 0
    samples_per_second: float = 0.0
    train_rows: int = 0
    tracker_run_id: str | None = None
    tracker_url: str | None = None
    tracker_errors: list[str] = Field(default_factory=list)

    @staticmethod
    def best_metrics(history: list[dict[str, float]], best_epoch: int | None) -> dict[str, float]:
        """The `val_...` figures of the history row of `best_epoch` (empty when there is none)."""
        row = next((r for r in history if r.get("epoch") == best_epoch), None) if best_epoch is not None else None
        return {k: v for k, v in (row or {}).items() if k.startswith("val_")}


class Registration(BaseModel):
    model_name: str
    version: str
    stage: str | None = None


class Deployment(BaseModel):
    """The deploy step's outcome: the endpoint, or why nothing was deployed."""

    deployed: bool
    reason: str
    endpoint: Endpoint | None = None
    example_request: dict[str, Any] | None = None
    example_response: dict[str, Any] | None = None


class RunOutcome(BaseModel):
    """What `rs run` ends with: metrics against the baseline, the gate decision (and the champion's), the
    registered version, and whether the model is served (where) or blocked (why, and the exit code)."""

    name: str
    plan_hash: str
    run_id: str
    run_name: str
    seconds: float
    fingerprint: str
    swept: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    baseline: str = "none"
    baseline_metrics: dict[str, float] = Field(default_factory=dict)
    gate: GateDecision
    training: Training
    registration: Registration | None = None
    deployment: Deployment = Field(default_factory=lambda: Deployment(deployed=False, reason="not deployed"))
    tracker_errors: list[str] = Field(default_factory=list)
    champion: ChampionDecision | None = None  # the production model compared with this one (models.champion)

    @property
    def blocked(self) -> bool:
        """The gate (or the champion) kept this model from production."""
        return not self.gate.passed

    @property
    def exit_code(self) -> int:
        """What `rs run` exits with for this outcome: 0, or EXIT_GATE_BLOCKED when the gate blocked the model."""
        return EXIT_GATE_BLOCKED if self.blocked else 0
