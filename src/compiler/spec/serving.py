"""`serving`: how the model is served, a union on `tier`. Moving tiers is one changed line."""

from typing import Literal

from pydantic import Field

from rscale.compiler.spec.base import Block, no_items
from rscale.registry import Registry

SERVING: Registry = Registry("serving tier", key="tier")


class _Tier(Block):
    log_predictions: bool = Field(True, description="Log every prediction for feedback joins.")
    log_file_max_mb: float = Field(
        64.0, gt=0, description="Start a new prediction log file (JSON lines) once the current one reaches this size."
    )
    log_file_max_minutes: float = Field(
        60.0, gt=0, description="Start a new prediction log file once the current one's first line is this old."
    )


@SERVING.register("local", impl="rscale.serving.local:LocalDeployer")
class LocalTier(_Tier):
    """A local HTTP server speaking the SageMaker container contract (/ping, /invocations)."""

    tier: Literal["local"]
    host: str = Field("127.0.0.1", description="Address the local server binds.")
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port.")
    workers: int = Field(
        1, ge=1, le=64, description="Server processes sharing the port (SO_REUSEPORT), each with the model loaded."
    )


@SERVING.register("serverless", impl="rscale.serving.sagemaker:SageMakerDeployer")
class ServerlessTier(_Tier):
    """A SageMaker serverless endpoint: costs nothing when idle."""

    tier: Literal["serverless"]
    memory_mb: int = Field(2048, description="1024 to 6144, in steps of 1024.")
    max_concurrency: int = Field(5, description="1 to 200.")
    provisioned_concurrency: int | None = Field(None, description="1 to 200, at most max_concurrency.")


class TargetTracking(Block):
    """Target tracking on SageMaker's invocations-per-instance metric."""

    invocations_per_instance: float = Field(100.0, gt=0, description="Invocations per instance per minute to hold.")
    scale_in_cooldown_s: int = Field(300, ge=0, description="Seconds between scale-in steps.")
    scale_out_cooldown_s: int = Field(60, ge=0, description="Seconds between scale-out steps.")


@SERVING.register("autoscaling", impl="rscale.serving.sagemaker:SageMakerDeployer")
class AutoscalingTier(_Tier):
    """A real-time endpoint with Application Auto Scaling."""

    tier: Literal["autoscaling"]
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$", description="SageMaker instance type.")
    min_instances: int = Field(1, ge=1, description="Instances kept when idle.")
    max_instances: int = Field(2, ge=1, description="Most instances under load; at least min_instances.")
    target: TargetTracking = Field(default_factory=TargetTracking, description="The scaling policy.")


class BuildContext(Block):
    """A generated Dockerfile and context for the serving image."""

    base_image: str = Field("python:3.11-slim", description="The image the Dockerfile starts FROM.")
    extra_requirements: list[str] = Field(default_factory=no_items, description="Extra pip requirements for the image.")


@SERVING.register("custom", impl="rscale.serving.sagemaker:SageMakerDeployer")
class CustomTier(_Tier):
    """Your own container: an image URI, or one built from the generated build context."""

    tier: Literal["custom"]
    image: str | None = Field(None, description="A container image URI that serves the model package. Give this or `build`.")
    build: BuildContext | None = Field(
        None, description="Generate a build context (Dockerfile) for the image instead; `build: {}` takes the defaults."
    )
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$", description="SageMaker instance type.")
    instance_count: int = Field(1, ge=1, description="Instances behind the endpoint.")
