"""`tracker`: where runs are recorded, a union on `kind`."""

from typing import Literal

from pydantic import Field

from rscale.compiler.spec.base import Block, SecretRef
from rscale.registry import Registry

TRACKERS: Registry = Registry("tracker", key="kind")


@TRACKERS.register("mlflow", impl="rscale.trackers.mlflow:MlflowTracker")
class MlflowTrackerConfig(Block):
    kind: Literal["mlflow"]
    tracking_uri: str | None = Field(
        None, description="Defaults to the stack's URI, or SQLite under .rs/ on the embedded default."
    )
    experiment: str | None = Field(None, description="Defaults to the spec's name.")


@TRACKERS.register("neptune", impl="rscale.trackers.neptune:NeptuneTracker")
class NeptuneTrackerConfig(Block):
    kind: Literal["neptune"]
    project: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="workspace/project")
    mode: Literal["async", "sync", "offline", "debug"] = Field(
        "async", description="Neptune client mode; `offline` writes under .rs/neptune for a later sync."
    )
    api_token: SecretRef = Field("${env:NEPTUNE_API_TOKEN}", description="Reference to the token; never the token.")


@TRACKERS.register("none", impl="rscale.trackers.none:NoTracker")
class NoTrackerConfig(Block):
    kind: Literal["none"]
