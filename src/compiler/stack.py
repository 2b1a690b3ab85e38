"""Stack definitions (`stacks/*.yaml`): where a spec runs. A spec never names infrastructure; a stack does.

This module is the light schema the compiler checks specs against; `rscale.stacks` turns a stack into
ZenML components. Account-specific values are `${env:NAME}` references, resolved at run time.
"""

import os
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from rscale.compiler.errors import Problem, SpecError, did_you_mean
from rscale.compiler.spec.base import Block, no_items
from rscale.registry import Registry

# GPU count -> SageMaker training instance type (docs/stacks.md shows it). plan.hardware_for picks the
# smallest entry with at least `train.gpus` GPUs; `train.instance_type` or `step_operator.instance_types`
# override it. g5 carries NVIDIA A10G (24 GB each); p4d carries 8 A100 (40 GB each).
DEFAULT_GPU_INSTANCES = {
    0: "ml.m5.xlarge",
    1: "ml.g5.xlarge",
    4: "ml.g5.12xlarge",
    8: "ml.p4d.24xlarge",
}

# `${env:NAME}` anywhere in a stack value; replaced by the variable's value at run time (rscale.stacks).
ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


class Orchestrator(Block):
    flavor: Literal["local", "sagemaker"] = "local"
    instance_type: str | None = Field(None, description="SageMaker orchestrator only: the instance every step gets.")
    execution_role: str | None = Field(None, description="SageMaker orchestrator only: IAM role ARN for its jobs.")
    region: str | None = None
    bucket: str | None = Field(None, description="S3 bucket for SageMaker job files; SageMaker's default when unset.")

    @model_validator(mode="after")
    def _sagemaker_needs_a_role(self) -> "Orchestrator":
        if self.flavor == "sagemaker" and not self.execution_role:
            raise ValueError("a sagemaker orchestrator needs `execution_role` (usually ${env:RS_SAGEMAKER_ROLE})")
        return self


class StepOperator(Block):
    """Runs the train step on SageMaker, with an instance picked from `instance_types` by `train.gpus`."""

    flavor: Literal["sagemaker"] = "sagemaker"
    role: str = Field(description="IAM role ARN, usually ${env:RS_SAGEMAKER_ROLE}.")
    bucket: str | None = Field(None, description="S3 bucket for job files; SageMaker's default bucket when unset.")
    instance_types: dict[int, str] = Field(
        default_factory=lambda: dict(DEFAULT_GPU_INSTANCES), description="GPU count -> training instance type."
    )
    volume_size_gb: int = Field(50, ge=1, description="Disk of the training instance.")
    max_run_hours: float = Field(24, gt=0, description="SageMaker stops a training job after this long.")
    estimator_args: dict[str, Any] = Field(
        default_factory=dict, description="Passed through to SageMaker's Estimator (e.g. use_spot_instances)."
    )


class ArtifactStore(Block):
    flavor: Literal["local", "s3"] = "local"
    path: str = Field(".rs/artifacts", description="A folder (local, relative to the project) or s3://bucket/prefix.")

    @model_validator(mode="after")
    def _s3_needs_an_s3_path(self) -> "ArtifactStore":
        if self.flavor == "s3" and not self.path.startswith("s3://"):
            raise ValueError(f"an s3 artifact store needs a path like s3://bucket/prefix (got {self.path!r})")
        return self


class ContainerRegistry(Block):
    flavor: Literal["aws", "default"] = "aws"
    uri: str = Field(description="ECR: <account>.dkr.ecr.<region>.amazonaws.com, usually from ${env:RS_ECR_URI}.")


class ImageBuilder(Block):
    """Where the training image is built: the local Docker engine, or AWS CodeBuild (no Docker needed)."""

    flavor: Literal["local", "aws"] = "local"
    code_build_project: str | None = Field(None, description="aws only: the CodeBuild project that builds images.")

    @model_validator(mode="after")
    def _aws_needs_a_project(self) -> "ImageBuilder":
        if self.flavor == "aws" and not self.code_build_project:
            raise ValueError("an aws image builder needs `code_build_project`")
        return self


class ContainerImage(Block):
    """The image remote steps run in: the project's pinned dependencies on top of a parent image."""

    parent_image: str | None = Field(None, description="ZenML's own image for its version when unset.")
    extras: list[str] = Field(default_factory=no_items, description="rscale pip extras to add (e.g. snowflake).")
    requirements: list[str] = Field(default_factory=no_items, description="More pip requirements, pinned.")
    apt_packages: list[str] = Field(default_factory=no_items)
    environment: dict[str, str] = Field(default_factory=dict, description="Variables set in the image.")


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
    private_key_file_pwd: str | None = Field(None, description="A reference, e.g. ${env:SNOWFLAKE_PRIVATE_KEY_FILE_PWD}.")
    database: str | None = None
    schema_: str | None = Field(None, alias="schema")
    warehouse: str | None = None
    role: str | None = None
    host: str | None = None
    port: int | str | None = Field(None, description="A port number, or a reference such as ${env:SNOWFLAKE_PORT}.")
    protocol: str | None = None
    retry_timeout_s: int = Field(
        300,
        ge=1,
        description="Seconds a failed request (a query, a fetch, closing the session) is retried, with backoff, before "
        "the run stops with a connection error. A healthy query may run longer: this bounds retrying, not queries.",
    )


if TYPE_CHECKING:  # the type checker cannot read the registry; it sees the built-in warehouses
    WarehouseConfig = DuckDBWarehouse | SnowflakeWarehouse
else:
    WarehouseConfig = Annotated[Union[WAREHOUSES.configs()], Field(discriminator="kind")]


class TrackerDefaults(Block):
    mlflow_tracking_uri: str | None = Field(None, description="Default MLflow URI; SQLite under .rs/ when unset.")


ServingTier = Literal["local", "serverless", "autoscaling", "custom"]


def _local_tier_only() -> list[ServingTier]:
    return ["local"]


class ServingDefaults(Block):
    tiers: list[ServingTier] = Field(default_factory=_local_tier_only)
    region: str | None = None
    role: str | None = Field(None, description="IAM role for SageMaker endpoints, usually ${env:RS_SAGEMAKER_ROLE}.")
    s3_prefix: str | None = Field(None, description="s3://bucket/prefix for model packages.")


class CostAssumptions(Block):
    """What an estimate assumes beyond prices; a team edits these next to its prices."""

    requests_per_month: int = Field(1_000_000, ge=0, description="Requests a serving month is priced at.")
    request_ms: float = Field(100.0, gt=0, description="Compute time of one request on a serverless endpoint.")
    request_kb: float = Field(2.0, ge=0, description="Request plus response size, for data-processing charges.")
    hours_per_month: float = Field(730.0, gt=0, description="Hours in a serving month (AWS prices a month as 730).")
    training_startup_minutes: float = Field(
        5.0, ge=0, description="Billed minutes of a remote training job before its first step (image pull, set-up)."
    )


class PriceTable(Block):
    """Dated prices a plan is costed with (`rs plan`). An editable table, not the truth: a team replaces it with
    its own (negotiated, reserved, other region) by editing the file or pointing `prices:` at another one."""

    as_of: date = Field(description="When these prices were read from the source; `rs plan` prints it.")
    source: str = Field(description="Where the prices come from, e.g. the provider's public price page.")
    region: str | None = Field(None, description="The region the prices are for.")
    currency: str = "USD"
    training_per_hour: dict[str, float] = Field(default_factory=dict, description="Training instance -> price/hour.")
    hosting_per_hour: dict[str, float] = Field(default_factory=dict, description="Real-time endpoint instance -> price/hour.")
    serverless_gb_second: float | None = Field(None, ge=0, description="Serverless inference compute, per GB-second.")
    serverless_provisioned_gb_second: float | None = Field(
        None, ge=0, description="Provisioned concurrency kept warm, per GB-second."
    )
    data_per_gb: float | None = Field(None, ge=0, description="Serverless data processed in and out, per GB.")
    assumptions: CostAssumptions = Field(default_factory=CostAssumptions)


class StackSpec(Block):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    description: str | None = None
    gpus: int = Field(0, ge=0, description="GPUs the orchestrator's own machine has for in-process training.")
    integrations: list[str] = Field(default_factory=no_items, description="ZenML integrations the stack needs.")
    orchestrator: Orchestrator = Field(default_factory=Orchestrator)
    step_operator: StepOperator | None = None
    artifact_store: ArtifactStore = Field(default_factory=ArtifactStore)
    container_registry: ContainerRegistry | None = None
    image_builder: ImageBuilder | None = None
    image: ContainerImage = Field(default_factory=ContainerImage)
    warehouse: WarehouseConfig = Field(default_factory=DuckDBWarehouse)
    tracker: TrackerDefaults = Field(default_factory=TrackerDefaults)
    serving: ServingDefaults = Field(default_factory=ServingDefaults)
    # Kept out of dumps (plan.json, the plan hash, ZenML's cache keys): editing prices must never retrain.
    prices: str | PriceTable | None = Field(
        None,
        exclude=True,
        repr=False,
        description="Prices for `rs plan`: a table, or a YAML file holding one (relative to the stack file).",
    )

    def can_train_on_gpus(self) -> bool:
        return self.step_operator is not None or self.orchestrator.flavor == "sagemaker" or self.gpus > 0

    def runs_remotely(self) -> bool:
        """Whether some step runs away from this machine (and so needs an image and a reachable ZenML store)."""
        return self.step_operator is not None or self.orchestrator.flavor != "local"

    def env_references(self) -> list[str]:
        """The environment variables this stack's values reference, in first-seen order."""
        names: list[str] = []
        _collect_env_names(self.model_dump(mode="json", by_alias=True), names)
        return names

    @model_validator(mode="after")
    def _remote_steps_need_a_registry(self) -> "StackSpec":
        if self.runs_remotely() and self.container_registry is None:
            raise ValueError(
                "a stack that runs steps on SageMaker needs a `container_registry` (ECR) for the step image"
            )
        if self.runs_remotely() and self.artifact_store.flavor == "local":
            raise ValueError(
                "a stack that runs steps on SageMaker needs a shared `artifact_store` (flavor: s3), "
                "since a job in AWS cannot read this machine's disk"
            )
        return self


def _collect_env_names(value: Any, names: list[str]) -> None:
    if isinstance(value, str):
        names.extend(n for n in ENV_REFERENCE.findall(value) if n not in names)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_env_names(item, names)
    elif isinstance(value, list):
        for item in value:
            _collect_env_names(item, names)


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
        stack = StackSpec.model_validate(doc.tree)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            problem = _problem(doc, doc.tree, {}, error, root=StackSpec)
            problems.append(problem)
        raise SpecError(problems, {doc.file: doc.text}) from None
    if isinstance(stack.prices, str) and not Path(stack.prices).is_absolute():  # relative to the stack file
        stack = stack.model_copy(update={"prices": str((path.parent / stack.prices).resolve())})
    return stack


def load_prices(path: str | Path) -> PriceTable:
    """Read a price table file (see `PriceTable`); errors point at the file, line and key like spec errors."""
    from pydantic import ValidationError

    from rscale.compiler.load import load_file
    from rscale.compiler.validate import _problem

    if not Path(path).is_file():
        raise SpecError([Problem(f"price table not found: {path}", fix="point the stack's `prices:` (or --prices) at a "
                                 "YAML file with as_of, source and prices; stacks/prices/ has an example")])
    doc = load_file(path)
    try:
        return PriceTable.model_validate(doc.tree)
    except ValidationError as exc:
        problems = [_problem(doc, doc.tree, {}, error, root=PriceTable) for error in exc.errors(include_url=False)]
        raise SpecError(problems, {doc.file: doc.text}) from None


def price_table(stack: StackSpec) -> PriceTable | None:
    """The stack's prices: its inline table, the file it names, or None when it has none."""
    if stack.prices is None or isinstance(stack.prices, PriceTable):
        return stack.prices
    return load_prices(stack.prices)
