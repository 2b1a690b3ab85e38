"""`serving`: how the model is served, a union on `tier`. Moving tiers is one changed line."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from rscale.compiler.spec.base import Block
from rscale.registry import Registry

SERVING: Registry = Registry("serving tier", key="tier")


class _Tier(Block):
    log_predictions: bool = Field(True, description="Log every prediction for feedback joins.")


@SERVING.register("local", impl="rscale.serving.local:LocalDeployer")
class LocalTier(_Tier):
    """A local HTTP server speaking the SageMaker container contract (/ping, /invocations)."""

    tier: Literal["local"]
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port.")


@SERVING.register("serverless", impl="rscale.serving.sagemaker:SageMakerDeployer")
class ServerlessTier(_Tier):
    """A SageMaker serverless endpoint: costs nothing when idle."""

    tier: Literal["serverless"]
    memory_mb: int = Field(2048, description="1024 to 6144, in steps of 1024.")
    max_concurrency: int = Field(5, description="1 to 200.")
    provisioned_concurrency: int | None = Field(None, description="1 to 200, at most max_concurrency.")


class TargetTracking(Block):
    invocations_per_instance: float = Field(100.0, gt=0)
    scale_in_cooldown_s: int = Field(300, ge=0)
    scale_out_cooldown_s: int = Field(60, ge=0)


@SERVING.register("autoscaling", impl="rscale.serving.sagemaker:SageMakerDeployer")
class AutoscalingTier(_Tier):
    """A real-time endpoint with Application Auto Scaling."""

    tier: Literal["autoscaling"]
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    min_instances: int = Field(1, ge=1)
    max_instances: int = Field(2, ge=1)
    target: TargetTracking = Field(default_factory=TargetTracking)


class BuildContext(Block):
    base_image: str = "python:3.11-slim"
    extra_requirements: list[str] = Field(default_factory=list)


@SERVING.register("custom", impl="rscale.serving.sagemaker:SageMakerDeployer")
class CustomTier(_Tier):
    """Your own container: an image URI, or one built from the generated build context."""

    tier: Literal["custom"]
    image: str | None = Field(None, description="A container image URI that serves the model package. Give this or `build`.")
    build: BuildContext | None = Field(
        None, description="Generate a build context (Dockerfile) for the image instead; `build: {}` takes the defaults."
    )
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(1, ge=1)
