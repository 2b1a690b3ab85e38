"""Stack definitions (`stacks/*.yaml`): where a spec runs. A spec never names infrastructure; a stack does.

This module is the light schema the compiler checks specs against; `rscale.stacks` turns a stack into
ZenML components. Account-specific values are `${env:NAME}` references, resolved at run time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field

from rscale.compiler.errors import Problem, SpecError, did_you_mean
from rscale.compiler.spec.base import Block
from rscale.registry import Registry

DEFAULT_GPU_INSTANCES = {
    0: "ml.m5.xlarge",
    1: "ml.g5.xlarge",
    4: "ml.g5.12xlarge",
    8: "ml.p4d.24xlarge",
}


class Orchestrator(Block):
    flavor: Literal["local", "sagemaker"] = "local"
    instance_type: str | None = None


class StepOperator(Block):
    flavor: Literal["sagemaker"] = "sagemaker"
    role: str = Field(description="IAM role ARN, usually ${env:RS_SAGEMAKER_ROLE}.")
    instance_types: dict[int, str] = Field(
        default_factory=lambda: dict(DEFAULT_GPU_INSTANCES), description="GPU count -> training instance type."
    )


class ArtifactStore(Block):
    flavor: Literal["local", "s3"] = "local"
    path: str = ".rs/artifacts"


class ContainerRegistry(Block):
    flavor: Literal["aws"] = "aws"
    uri: str


WAREHOUSES: Registry = Registry("warehouse", key="kind")


@WAREHOUSES.register("duckdb", impl="rscale.warehouses.duckdb:DuckDBWarehouse")
class DuckDBWarehouse(Block):
    """The embedded default: one DuckDB file under .rs/."""

    kind: Literal["duckdb"] = "duckdb"
    path: str = ".rs/warehouse.duckdb"


@WAREHOUSES.register("snowflake", impl="rscale.warehouses.snowflake:SnowflakeWarehouse")
class SnowflakeWarehouse(Block):
    """Snowflake through Snowpark. Credentials are references, or come from connections.toml."""

    kind: Literal["snowflake"]
    connection_name: str | None = Field(None, description="A connection in ~/.snowflake/connections.toml.")
    account: str | None = None
    user: str | None = None
    password: str | None = Field(None, description="A reference, e.g. ${env:SNOWFLAKE_PASSWORD}.")
    authenticator: str | None = None
    private_key_file: str | None = None
    database: str | None = None
    schema_: str | None = Field(None, alias="schema")
    warehouse: str | None = None
    role: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None


WarehouseConfig = Annotated[Union[WAREHOUSES.configs()], Field(discriminator="kind")]  # type: ignore[valid-type]


class TrackerDefaults(Block):
    mlflow_tracking_uri: str | None = Field(None, description="Default MLflow URI; SQLite under .rs/ when unset.")


class ServingDefaults(Block):
    tiers: list[Literal["local", "serverless", "autoscaling", "custom"]] = Field(default_factory=lambda: ["local"])
    region: str | None = None
    role: str | None = Field(None, description="IAM role for SageMaker endpoints, usually ${env:RS_SAGEMAKER_ROLE}.")
    s3_prefix: str | None = Field(None, description="s3://bucket/prefix for model packages.")


class StackSpec(Block):
    name: str
    description: str | None = None
    gpus: int = Field(0, ge=0, description="GPUs the orchestrator's own machine has for in-process training.")
    integrations: list[str] = Field(default_factory=list, description="ZenML integrations the stack needs.")
    orchestrator: Orchestrator = Field(default_factory=Orchestrator)
    step_operator: StepOperator | None = None
    artifact_store: ArtifactStore = Field(default_factory=ArtifactStore)
    container_registry: ContainerRegistry | None = None
    warehouse: WarehouseConfig = Field(default_factory=DuckDBWarehouse)
    tracker: TrackerDefaults = Field(default_factory=TrackerDefaults)
    serving: ServingDefaults = Field(default_factory=ServingDefaults)

    def can_train_on_gpus(self) -> bool:
        return self.step_operator is not None or self.orchestrator.flavor == "sagemaker" or self.gpus > 0


def stacks_dir(root: Path | None = None) -> Path:
    return Path(os.environ.get("RS_STACKS_DIR", (root or Path.cwd()) / "stacks"))


def available(root: Path | None = None) -> list[str]:
    return sorted(p.stem for p in stacks_dir(root).glob("*.yaml"))


def load_stack(name: str, root: Path | None = None) -> StackSpec:
    """Load `stacks/<name>.yaml` (or a path to a stack file). The embedded default needs no file."""
    from rscale.compiler.load import load_file
    from rscale.compiler.validate import _problem  # same error rendering as specs

    path = Path(name) if name.endswith((".yaml", ".yml")) else stacks_dir(root) / f"{name}.yaml"
    if not path.exists():
        if name == "local":
            return StackSpec(name="local", description="embedded default")
        names = available(root)
        hint = did_you_mean(name, names)
        raise SpecError(
            [Problem(f"no stack named `{name}`", fix=(hint + " " if hint else "") + f"stacks: {', '.join(names)}")]
        )
    doc = load_file(path)
    from pydantic import ValidationError

    try:
        return StackSpec.model_validate(doc.tree)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            problem = _problem(doc, doc.tree, {}, error, root=StackSpec)
            problems.append(problem)
        raise SpecError(problems, {doc.file: doc.text}) from None
