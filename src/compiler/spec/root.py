"""The whole spec, version 1: one YAML file per use case."""

from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Field

from rscale.compiler.spec.base import Block, no_items
from rscale.compiler.spec.checks import Check
from rscale.compiler.spec.data import DataSpec
from rscale.compiler.spec.evaluate import EvaluateSpec
from rscale.compiler.spec.features import FeaturesSpec
from rscale.compiler.spec.feedback import FeedbackSpec
from rscale.compiler.spec.model import MODELS
from rscale.compiler.spec.monitor import MonitorSpec
from rscale.compiler.spec.serving import SERVING, LocalTier
from rscale.compiler.spec.split import SplitSpec
from rscale.compiler.spec.tracker import TRACKERS, MlflowTrackerConfig
from rscale.compiler.spec.train import TrainSpec

SPEC_VERSION = 1

if TYPE_CHECKING:  # the type checker cannot read registries; it sees the built-in adapters
    from rscale.compiler.spec.model import CustomModelConfig, SessionRecConfig, TabularConfig, TextConfig
    from rscale.compiler.spec.serving import AutoscalingTier, CustomTier, ServerlessTier
    from rscale.compiler.spec.tracker import NeptuneTrackerConfig, NoTrackerConfig

    ModelSpec = SessionRecConfig | TabularConfig | TextConfig | CustomModelConfig
    TrackerSpec = MlflowTrackerConfig | NeptuneTrackerConfig | NoTrackerConfig
    ServingSpec = LocalTier | ServerlessTier | AutoscalingTier | CustomTier
else:  # the unions pydantic validates are built from the registries, so a registered adapter joins them
    ModelSpec = Annotated[Union[MODELS.configs()], Field(discriminator="type")]
    TrackerSpec = Annotated[Union[TRACKERS.configs()], Field(discriminator="kind")]
    ServingSpec = Annotated[Union[SERVING.configs()], Field(discriminator="tier")]


class Spec(Block):
    """One use case: from a warehouse query to a live endpoint and back to feedback."""

    spec_version: Literal[1] = Field(description="The spec language version this file is written in.")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$", description="Names the build folder, runs and endpoint.")
    description: str | None = Field(None, description="One line on what the use case predicts, for people.")
    data: DataSpec = Field(description="Where the rows come from: one SQL query, one row per example.")
    checks: list[Check] = Field(
        default_factory=no_items, description="Data checks run in the warehouse before training; a failed `error` check stops the run."
    )
    features: FeaturesSpec = Field(
        description="Which query columns the model reads and which it predicts; types may be inferred from the warehouse."
    )
    split: SplitSpec = Field(default_factory=SplitSpec, description="How rows are split into train, validation and test.")
    model: ModelSpec = Field(description="The model family, picked by `type`, and its settings.")
    train: TrainSpec = Field(default_factory=TrainSpec, description="How the Lightning Trainer runs: epochs, batch, learning rate, GPUs.")
    evaluate: EvaluateSpec | None = Field(
        None,
        description="Metrics, the baseline to beat, and the gate that decides deployment. Left out: the task's "
        "metrics, its strongest fair baseline and a gate on the first metric (see `rs compile --explain`).",
    )
    tracker: TrackerSpec = Field(
        default_factory=lambda: MlflowTrackerConfig(kind="mlflow"), description="Where runs are recorded, picked by `kind`."
    )
    serving: ServingSpec = Field(
        default_factory=lambda: LocalTier(tier="local"), description="How the model is served, picked by `tier`."
    )
    feedback: FeedbackSpec | None = Field(
        None, description="How the outcome of a served prediction is found in the warehouse (for `rs monitor` and retraining)."
    )
    monitor: MonitorSpec = Field(
        default_factory=MonitorSpec, description="Thresholds `rs monitor` checks; crossing one exits with code 5."
    )
