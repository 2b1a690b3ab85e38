"""SageMaker serving tiers (serverless, autoscaling, custom) on plain boto3.

One endpoint per use case, named after the spec. Each deploy creates a model and an endpoint config
named from the spec name, the plan hash and the package hash, then creates or updates the endpoint, waits
for InService and sends a smoke request; on failure the previous config (and its scaling) is restored.
Why boto3 and not the SageMaker SDK: see docs/serving.md. `AWS_ENDPOINT_URL` is honoured by boto3 itself.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rscale.errors import ConfigurationError, RscaleError
from rscale.references import resolve
from rscale.service_errors import AWS_RETRIES
from rscale.serving.endpoint import Endpoint, remove_state, write_state

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan
    from rscale.compiler.stack import StackSpec

SAGEMAKER_TIERS = ("serverless", "autoscaling", "custom")
VARIANT = "main"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed")
TAG_SPEC = "rscale:spec"
TAG_PLAN = "rscale:plan-hash"
TAG_PACKAGE = "rscale:package-sha256"
TAG_TIER = "rscale:tier"
TAG_VERSION = "rscale:model-version"
_NAME_MAX = 63
_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


# --- names and package ---------------------------------------------------------------------------


def endpoint_name(spec_name: str) -> str:
    """The SageMaker endpoint of a use case: its spec name, with `_` (not allowed there) as `-`."""
    return spec_name.replace("_", "-")[:_NAME_MAX]


@dataclass(frozen=True)
class DeployNames:
    """The names one deploy creates. Model and config share a name: spec, plan hash, package hash."""

    endpoint: str
    version: str  # model and endpoint config name

    @classmethod
    def of(cls, spec_name: str, plan_hash: str, package_sha256: str) -> DeployNames:
        endpoint = endpoint_name(spec_name)
        suffix = f"-{plan_hash[:8]}-{package_sha256[:8]}"
        return cls(endpoint, endpoint[: _NAME_MAX - len(suffix)].rstrip("-") + suffix)

    @staticmethod
    def pattern(endpoint: str) -> re.Pattern[str]:
        """Matches the model/config names deploys of `endpoint` create (and nothing of another spec)."""
        stem = re.escape(endpoint[: _NAME_MAX - 18].rstrip("-"))
        return re.compile(rf"^{stem}-[0-9a-f]{{8}}-[0-9a-f]{{8}}$")


def package_sha256(package_dir: Path) -> str:
    """Content hash of a package directory: relative paths and bytes of every file, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(package_dir).rglob("*") if p.is_file()):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def model_tarball(package_dir: Path) -> bytes:
    """model.tar.gz as SageMaker expects it (files at the root, extracted to /opt/ml/model).

    Byte-for-byte reproducible (sorted entries, zeroed times and owners), so the same package uploads the same object.
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in Path(package_dir).rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(package_dir).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as file:
                tar.addfile(info, file)
    return gzip.compress(raw.getvalue(), mtime=0)


def read_manifest(package_dir: Path) -> dict[str, Any]:
    path = Path(package_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def smoke_payload_for(manifest: dict[str, Any]) -> dict[str, Any]:
    """One request record the package accepts, from its manifest: its `example`, else built from `request_schema`."""
    if isinstance(manifest.get("example"), dict):
        return dict(manifest["example"])
    schema = manifest.get("request_schema") or {}
    record: dict[str, Any] = {}
    for name in schema.get("required", []):
        kinds = (schema.get("properties", {}).get(name) or {}).get("type", "null")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if "null" in kinds:
            record[name] = None
        elif "array" in kinds:
            record[name] = []
        elif "number" in kinds or "integer" in kinds:
            record[name] = 0
        elif "boolean" in kinds:
            record[name] = False
        else:
            record[name] = ""
    return record


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ConfigurationError(
            f"serving.s3_prefix is `{uri}`; expected s3://bucket/prefix", fix="set serving.s3_prefix in the stack file"
        )
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def _tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


# --- the deployer ----------------------------------------------------------------------------------


@dataclass
class _Scaling:
    """An endpoint variant's scalable target and policies, as read back, so a rollback can restore them."""

    target: dict[str, Any]
    policies: list[dict[str, Any]] = field(default_factory=list)


class DeployFailed(RscaleError):
    """The new config did not serve; the endpoint was rolled back (the message says to what)."""


class SageMakerDeployer:
    """The `Deployer` of the serverless, autoscaling and custom tiers on one stack.

    Credentials come from boto3's standard chain; the region from the stack (`serving.region`) or that chain.
    `wait_delay_s` and `wait_max_attempts` bound the botocore waiters (defaults: 15 s x 80, i.e. 20 minutes).
    """

    def __init__(self, stack: StackSpec, *, wait_delay_s: float = 15.0, wait_max_attempts: int = 80) -> None:
        self.stack = stack
        self.wait_delay_s = wait_delay_s
        self.wait_max_attempts = wait_max_attempts
        self._clients: dict[str, Any] = {}
        self._session: Any = None

    # --- clients --------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client for `service`, made once. The endpoint URL is boto3's own choice (AWS_ENDPOINT_URL)."""
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            if self._session is None:
                region = self.stack.serving.region
                self._session = boto3.session.Session(
                    region_name=resolve(region, "serving.region") if region else None
                )
            session = self._session
            if session.region_name is None:
                raise ConfigurationError(
                    f"stack `{self.stack.name}` names no AWS region for serving",
                    fix="set serving.region in the stack file, or export AWS_DEFAULT_REGION",
                )
            read_timeout = 70 if service == "sagemaker-runtime" else 60  # invocations may take 60 s
            config = Config(retries=dict(AWS_RETRIES), read_timeout=read_timeout)  # throttling, 5xx: botocore's backoff
            self._clients[service] = session.client(service, config=config)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    # --- Deployer protocol ----------------------------------------------------------------------
    def deploy(self, plan: Plan, package_dir: Path, *, smoke_payload: dict[str, Any] | None = None) -> Endpoint:
        """Serve `package_dir` under the plan's name on its tier; a no-op when this plan and package already serve.

        Raises DeployFailed after restoring the previous config when the new one does not reach InService,
        cannot be scaled, or fails the smoke request.
        """
        serving = plan.serving
        if serving.tier not in SAGEMAKER_TIERS:
            raise ConfigurationError(
                f"serving tier `{serving.tier}` is not a SageMaker tier", fix=f"use one of {', '.join(SAGEMAKER_TIERS)}"
            )
        package_dir = Path(package_dir)
        manifest = read_manifest(package_dir)
        digest = package_sha256(package_dir)
        names = DeployNames.of(plan.name, plan.hash, digest)
        current = self._describe_endpoint(names.endpoint)
        if current is not None:
            self._check_ours(current, plan.name)
            if current["EndpointConfigName"] == names.version and current["EndpointStatus"] == "InService":
                self._record(plan, package_dir, names)
                return self._endpoint_of(plan.name, current, action="unchanged")
            if current["EndpointStatus"] in BUSY:
                raise RscaleError(
                    f"endpoint `{names.endpoint}` is {current['EndpointStatus']}; it cannot be changed now",
                    fix=f"wait until `rs status {plan.name}` shows InService, then deploy again",
                )
            if serving.tier == "serverless" and self._is_instance_based(current["EndpointConfigName"]):
                raise ConfigurationError(
                    f"endpoint `{names.endpoint}` runs on instances; SageMaker cannot update a real-time endpoint "
                    "to serverless in place",
                    fix=f"`rs undeploy {plan.name}` and deploy again (the endpoint is down in between), "
                    "or keep an instance-based tier",
                )
        image = self._image_for(plan, package_dir, digest)
        model_data = self._upload(plan.name, package_dir, digest)
        tags = {
            TAG_SPEC: plan.name,
            TAG_PLAN: plan.hash,
            TAG_PACKAGE: digest,
            TAG_TIER: serving.tier,
            TAG_VERSION: str(manifest.get("version") or digest[:12]),
        }
        self._create_model(names.version, image, model_data, plan, tags)
        self._create_config(names.version, serving, tags)

        restarted = False
        if current is not None and current["EndpointStatus"] == "Failed":
            # A failed endpoint can be neither updated nor rolled back to: replace it.
            self._delete_endpoint(names.endpoint)
            current, restarted = None, True
        previous = current["EndpointConfigName"] if current else None
        previous_scaling = self._read_scaling(names.endpoint) if current else None
        if current is None:
            self.sagemaker.create_endpoint(
                EndpointName=names.endpoint, EndpointConfigName=names.version, Tags=_tags(tags)
            )
        else:
            # Application Auto Scaling must let go of the variant before the endpoint's config changes.
            self._remove_scaling(names.endpoint)
            try:
                self.sagemaker.update_endpoint(EndpointName=names.endpoint, EndpointConfigName=names.version)
            except Exception:
                # The endpoint still serves its previous config: give it its scaling back, then report
                # (the CLI names the call and the fix). The new model and config are pruned by the next deploy.
                if previous_scaling is not None:
                    self._restore_scaling(previous_scaling)
                raise

        failure = self._wait_in_service(names.endpoint, names.version)
        if failure is None:
            try:
                if serving.tier == "autoscaling":
                    self._apply_scaling(names.endpoint, serving)
            except Exception as exc:  # noqa: BLE001 - any failure here is rolled back and reported
                failure = f"its autoscaling could not be set: {exc}"
        if failure is None:
            failure = self._smoke(names.endpoint, smoke_payload or smoke_payload_for(manifest))
        if failure is not None:
            outcome = self._roll_back(names, previous, previous_scaling)
            raise DeployFailed(
                f"deploy of `{plan.name}` ({names.version}) failed: {failure}. {outcome}",
                fix=f"read the container logs in CloudWatch (/aws/sagemaker/Endpoints/{names.endpoint}), "
                "fix the model or the serving settings, and deploy again",
            )
        arn = self.sagemaker.describe_endpoint(EndpointName=names.endpoint)["EndpointArn"]
        self.sagemaker.add_tags(ResourceArn=arn, Tags=_tags(tags))
        self._prune(names.endpoint, keep={names.version, previous or ""})
        self._record(plan, package_dir, names)
        action = "created" if previous is None else "updated"
        endpoint = self.status(plan.name)
        assert endpoint is not None
        endpoint.details["action"] = "replaced failed endpoint" if restarted else action
        if previous:
            endpoint.details["previous_config"] = previous
        return endpoint

    def status(self, name: str) -> Endpoint | None:
        """The endpoint of use case `name` with its tier and the settings that drive cost, or None."""
        described = self._describe_endpoint(endpoint_name(name))
        return None if described is None else self._endpoint_of(name, described)

    def predict(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke the endpoint through sagemaker-runtime with one JSON body; the decoded JSON response."""
        from botocore.exceptions import ClientError

        try:
            response = self.client("sagemaker-runtime").invoke_endpoint(
                EndpointName=endpoint_name(name),
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(payload).encode(),
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise RscaleError(
                f"endpoint `{endpoint_name(name)}` refused the request: {error.get('Code')}: {error.get('Message')}",
                fix=f"check `rs status {name}`, and the request against the model's request schema",
            ) from None
        body = response["Body"].read()
        try:
            return json.loads(body)  # type: ignore[no-any-return]
        except ValueError:
            raise RscaleError(
                f"endpoint `{endpoint_name(name)}` answered with a body that is not JSON: {body[:200]!r}",
                fix="the container must speak the rscale serving contract (JSON in, JSON out)",
            ) from None

    def undeploy(self, name: str) -> bool:
        """Delete the endpoint, its scaling, and every model and config its deploys made. S3 packages stay."""
        endpoint = endpoint_name(name)
        described = self._describe_endpoint(endpoint)
        if described is not None:
            self._check_ours(described, name)
            self._remove_scaling(endpoint)
            self._delete_endpoint(endpoint)
        pruned = self._prune(endpoint, keep=set())
        remove_state(name)
        return described is not None or pruned > 0

    # --- steps ----------------------------------------------------------------------------------
    def _record(self, plan: Plan, package_dir: Path, names: DeployNames) -> None:
        """The endpoint's record under .rs/serving/, so `rs status NAME` and `rs undeploy NAME` find this tier.

        The stack is stored with its ${env:...} references, never their values.
        """
        write_state(
            plan.name,
            {
                "tier": plan.serving.tier,
                "stack": self.stack.model_dump(mode="json", by_alias=True),
                "package_dir": str(Path(package_dir).resolve()),
                "endpoint": names.endpoint,
                "version": names.version,
                "plan_hash": plan.hash,
            },
        )

    def _describe_endpoint(self, endpoint: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.sagemaker.describe_endpoint(EndpointName=endpoint)  # type: ignore[no-any-return]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ValidationException":
                return None
            raise

    def _tags_of(self, arn: str) -> dict[str, str]:
        tags = self.sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
        return {t["Key"]: t["Value"] for t in tags}  # later wins: some backends append instead of overwrite

    def _check_ours(self, described: dict[str, Any], spec_name: str) -> None:
        owner = self._tags_of(described["EndpointArn"]).get(TAG_SPEC)
        if owner != spec_name:
            raise ConfigurationError(
                f"a SageMaker endpoint named `{described['EndpointName']}` exists but was not deployed by rscale "
                f"for `{spec_name}` (its {TAG_SPEC} tag is {owner!r}); rscale will not change it",
                fix="rename the use case (spec `name`), or delete that endpoint yourself",
            )

    def _is_instance_based(self, config_name: str) -> bool:
        variants = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
        return any("ServerlessConfig" not in v for v in variants)

    def _image_for(self, plan: Plan, package_dir: Path, digest: str) -> str:
        """The container image: the custom tier's own URI, else one built from a generated build context.

        The context is written under build/<name>/; when the image is not in the registry yet, the error says
        how to build and push it (no Docker engine is assumed).
        """
        from rscale.paths import build_dir
        from rscale.stacks.containers import serving_image, write_build_context

        serving = plan.serving
        if serving.tier == "custom" and serving.image:
            return serving.image
        registry = self.stack.container_registry
        if registry is None:
            raise ConfigurationError(
                f"serving tier `{serving.tier}` needs a container image, and stack `{self.stack.name}` has no "
                "container_registry to hold one",
                fix="add `container_registry: {uri: <account>.dkr.ecr.<region>.amazonaws.com}` to the stack"
                + (", or set serving.image" if serving.tier == "custom" else ""),
            )
        import rscale

        if serving.tier == "custom":  # the package is baked in: one image per package
            repository, tag, context = f"rscale-{endpoint_name(plan.name)}", digest[:12], package_dir
        else:  # one generic serving image; SageMaker puts the package at /opt/ml/model
            repository, tag, context = "rscale-serving", rscale.__version__, None
        registry_uri = resolve(registry.uri, "container_registry.uri").rstrip("/")
        uri = f"{registry_uri}/{repository}:{tag}"
        out = build_dir(plan.name) / ("container" if context else "serving-image")
        write_build_context(serving_image(plan, context), out)
        if not self._image_exists(uri):
            raise ConfigurationError(
                f"the image {uri} is not in the registry yet; its build context is {out}",
                fix=f"docker build -t {uri} {out} && docker push {uri}, then deploy again"
                + (" (or set serving.image to an image you host)" if serving.tier == "custom" else ""),
            )
        return uri

    def _image_exists(self, uri: str) -> bool:
        """Whether an ECR image exists. Images outside ECR cannot be checked here and are taken on trust."""
        from botocore.exceptions import ClientError

        host, _, rest = uri.partition("/")
        match = _ECR_HOST.match(host)
        if match is None:
            return True
        repository, _, tag = rest.rpartition(":")
        try:
            self.client("ecr").describe_images(
                registryId=match.group(1), repositoryName=repository, imageIds=[{"imageTag": tag}]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return False
            raise
        return True

    def _upload(self, spec_name: str, package_dir: Path, digest: str) -> str:
        """Put model.tar.gz under the stack's s3_prefix, keyed by content hash (skipped when already there)."""
        from botocore.exceptions import ClientError

        prefix_uri = self.stack.serving.s3_prefix
        if not prefix_uri:
            raise ConfigurationError(
                f"stack `{self.stack.name}` has no serving.s3_prefix for model packages",
                fix="set serving.s3_prefix: s3://<bucket>/<prefix> in the stack file",
            )
        bucket, prefix = split_s3(resolve(prefix_uri, "serving.s3_prefix"))
        key = "/".join(part for part in (prefix, endpoint_name(spec_name), digest[:16], "model.tar.gz") if part)
        s3 = self.client("s3")
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            s3.put_object(
                Bucket=bucket, Key=key, Body=model_tarball(package_dir), Metadata={"package-sha256": digest}
            )
        return f"s3://{bucket}/{key}"

    def _role(self) -> str:
        role = self.stack.serving.role
        if not role:
            raise ConfigurationError(
                f"stack `{self.stack.name}` names no IAM role for SageMaker endpoints",
                fix="set serving.role: ${env:RS_SAGEMAKER_ROLE} in the stack file and export RS_SAGEMAKER_ROLE",
            )
        return resolve(role, "serving.role")

    def _create_model(self, name: str, image: str, model_data: str, plan: Plan, tags: dict[str, str]) -> None:
        from botocore.exceptions import ClientError

        try:
            self.sagemaker.describe_model(ModelName=name)
            return  # same name, same plan and package: created by an earlier, interrupted deploy
        except ClientError:
            pass
        environment = {"SM_MODEL_DIR": "/opt/ml/model", "RS_PLAN_HASH": plan.hash}
        self.sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn=self._role(),
            PrimaryContainer={"Image": image, "ModelDataUrl": model_data, "Environment": environment},
            Tags=_tags(tags),
        )

    def _create_config(self, name: str, serving: Any, tags: dict[str, str]) -> None:
        from botocore.exceptions import ClientError

        try:
            self.sagemaker.describe_endpoint_config(EndpointConfigName=name)
            return
        except ClientError:
            pass
        variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": name}
        if serving.tier == "serverless":
            config = {"MemorySizeInMB": serving.memory_mb, "MaxConcurrency": serving.max_concurrency}
            if serving.provisioned_concurrency:
                config["ProvisionedConcurrency"] = serving.provisioned_concurrency
            variant["ServerlessConfig"] = config
        else:
            count = serving.min_instances if serving.tier == "autoscaling" else serving.instance_count
            variant.update(InstanceType=serving.instance_type, InitialInstanceCount=count, InitialVariantWeight=1.0)
        self.sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant], Tags=_tags(tags))

    def _waiter_config(self) -> dict[str, Any]:
        return {"Delay": self.wait_delay_s, "MaxAttempts": self.wait_max_attempts}

    def _wait_in_service(self, endpoint: str, config_name: str) -> str | None:
        """None when the endpoint serves `config_name`, else why not (in words)."""
        from botocore.exceptions import WaiterError

        try:
            self.sagemaker.get_waiter("endpoint_in_service").wait(
                EndpointName=endpoint, WaiterConfig=self._waiter_config()
            )
        except WaiterError as exc:
            last = exc.last_response or {}
            reason = last.get("FailureReason") or last.get("Error", {}).get("Message") or str(exc)
            status = last.get("EndpointStatus", "not InService")
            return f"the endpoint is {status} ({reason})"
        described = self.sagemaker.describe_endpoint(EndpointName=endpoint)
        if described["EndpointConfigName"] != config_name:  # SageMaker rolled the update back by itself
            reason = described.get("FailureReason") or "SageMaker rolled the update back"
            return f"the update did not take ({reason})"
        return None

    def _smoke(self, endpoint: str, payload: dict[str, Any]) -> str | None:
        """Send one request through sagemaker-runtime; None when the container answered 2xx."""
        try:
            self.client("sagemaker-runtime").invoke_endpoint(
                EndpointName=endpoint, ContentType="application/json", Body=json.dumps(payload).encode()
            )
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the new config is not serving
            return f"the smoke request failed ({exc})"
        return None

    def _roll_back(self, names: DeployNames, previous: str | None, scaling: _Scaling | None) -> str:
        """Restore `previous` (or remove a new endpoint), delete the failed model and config; say what happened."""
        try:
            if previous is None:
                self._remove_scaling(names.endpoint)
                self._delete_endpoint(names.endpoint)
                outcome = "Rolled back: the new endpoint was deleted (nothing served before)."
            else:
                self._remove_scaling(names.endpoint)
                described = self.sagemaker.describe_endpoint(EndpointName=names.endpoint)
                if described["EndpointConfigName"] != previous:
                    self.sagemaker.update_endpoint(EndpointName=names.endpoint, EndpointConfigName=previous)
                problem = self._wait_in_service(names.endpoint, previous)
                if problem is not None:
                    return f"Rolling back to {previous} failed too: {problem}. Check `rs status` at once."
                if scaling is not None:
                    self._restore_scaling(scaling)
                outcome = f"Rolled back: the endpoint serves the previous config {previous} again."
        except Exception as exc:  # noqa: BLE001 - report both failures rather than hide the first
            return f"Rolling back failed too: {exc}. Check `rs status` at once."
        self._delete_version(names.version)
        return outcome

    def _delete_endpoint(self, endpoint: str) -> None:
        from botocore.exceptions import WaiterError

        self.sagemaker.delete_endpoint(EndpointName=endpoint)
        try:
            self.sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig=self._waiter_config())
        except WaiterError as exc:
            raise RscaleError(
                f"endpoint `{endpoint}` was asked to delete but still exists: {exc}",
                fix="check it in the SageMaker console, then `rs undeploy` again",
            ) from None

    def _delete_version(self, name: str) -> None:
        from botocore.exceptions import ClientError

        for call, key in ((self.sagemaker.delete_endpoint_config, "EndpointConfigName"), (self.sagemaker.delete_model, "ModelName")):
            try:
                call(**{key: name})
            except ClientError:
                pass  # already gone

    def _prune(self, endpoint: str, keep: set[str]) -> int:
        """Delete this spec's models and configs except `keep` (the current and the previous, for rollback)."""
        pattern = DeployNames.pattern(endpoint)
        stem = endpoint[: _NAME_MAX - 18].rstrip("-")
        names: set[str] = set()
        for operation, listing, key in (
            ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName"),
            ("list_models", "Models", "ModelName"),
        ):
            for page in self.sagemaker.get_paginator(operation).paginate(NameContains=stem):
                names.update(item[key] for item in page[listing] if pattern.match(item[key]))
        stale = sorted(names - keep)
        for name in stale:
            self._delete_version(name)
        return len(stale)

    # --- autoscaling ----------------------------------------------------------------------------
    @staticmethod
    def _resource_id(endpoint: str) -> str:
        return f"endpoint/{endpoint}/variant/{VARIANT}"

    def _read_scaling(self, endpoint: str) -> _Scaling | None:
        scaling = self.client("application-autoscaling")
        resource = self._resource_id(endpoint)
        targets = scaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=SCALABLE_DIMENSION
        )["ScalableTargets"]
        if not targets:
            return None
        policies = scaling.describe_scaling_policies(
            ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=SCALABLE_DIMENSION
        )["ScalingPolicies"]
        return _Scaling(targets[0], policies)

    def _remove_scaling(self, endpoint: str) -> None:
        current = self._read_scaling(endpoint)
        if current is None:
            return
        scaling = self.client("application-autoscaling")
        for policy in current.policies:  # deregistering drops them on AWS; some backends keep them
            scaling.delete_scaling_policy(
                PolicyName=policy["PolicyName"], ServiceNamespace="sagemaker",
                ResourceId=policy["ResourceId"], ScalableDimension=SCALABLE_DIMENSION,
            )
        scaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=self._resource_id(endpoint), ScalableDimension=SCALABLE_DIMENSION
        )

    def _apply_scaling(self, endpoint: str, serving: Any) -> None:
        scaling = self.client("application-autoscaling")
        resource = self._resource_id(endpoint)
        scaling.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=serving.min_instances, MaxCapacity=serving.max_instances,
        )
        scaling.put_scaling_policy(
            PolicyName=f"{endpoint}-invocations-per-instance",
            ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(serving.target.invocations_per_instance),
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": serving.target.scale_in_cooldown_s,
                "ScaleOutCooldown": serving.target.scale_out_cooldown_s,
            },
        )

    def _restore_scaling(self, saved: _Scaling) -> None:
        scaling = self.client("application-autoscaling")
        target = saved.target
        scaling.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=target["ResourceId"], ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=target["MinCapacity"], MaxCapacity=target["MaxCapacity"],
        )
        for policy in saved.policies:
            config = dict(policy.get("TargetTrackingScalingPolicyConfiguration") or {})
            if not config:
                continue
            scaling.put_scaling_policy(
                PolicyName=policy["PolicyName"], ServiceNamespace="sagemaker", ResourceId=policy["ResourceId"],
                ScalableDimension=SCALABLE_DIMENSION, PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration=config,
            )

    # --- reading back ---------------------------------------------------------------------------
    def _endpoint_of(self, spec_name: str, described: dict[str, Any], action: str | None = None) -> Endpoint:
        """The Endpoint record: tier, versions, and the settings that drive cost, read back from SageMaker."""
        endpoint = described["EndpointName"]
        tags = self._tags_of(described["EndpointArn"])
        config_name = described["EndpointConfigName"]
        details: dict[str, Any] = {
            "status": described["EndpointStatus"],
            "endpoint_config": config_name,
            "region": self.sagemaker.meta.region_name,
            "package_sha256": tags.get(TAG_PACKAGE),
        }
        if described.get("FailureReason"):
            details["failure_reason"] = described["FailureReason"]
        tier = tags.get(TAG_TIER, "unknown")
        details["tier"] = tier
        try:
            config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            variant = config["ProductionVariants"][0]
        except Exception:  # noqa: BLE001 - a deleted config must not hide the endpoint itself
            variant = {}
        live: dict[str, Any] = next((v for v in described.get("ProductionVariants", []) if v.get("VariantName") == VARIANT), {})
        if "ServerlessConfig" in variant:
            serverless = variant["ServerlessConfig"]
            details.update(
                memory_mb=serverless["MemorySizeInMB"],
                max_concurrency=serverless["MaxConcurrency"],
                provisioned_concurrency=serverless.get("ProvisionedConcurrency"),
            )
        elif variant:
            details.update(
                instance_type=variant.get("InstanceType"),
                instance_count=live.get("CurrentInstanceCount", variant.get("InitialInstanceCount")),
            )
            scaling = self._read_scaling(endpoint) if tier == "autoscaling" else None
            if scaling is not None:
                details.update(min_instances=scaling.target["MinCapacity"], max_instances=scaling.target["MaxCapacity"])
                for policy in scaling.policies:
                    target = (policy.get("TargetTrackingScalingPolicyConfiguration") or {}).get("TargetValue")
                    if target is not None:
                        details["target_invocations_per_instance"] = target
        if variant.get("ModelName"):
            try:
                container = self.sagemaker.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
                details.update(image=container.get("Image"), model_data=container.get("ModelDataUrl"))
            except Exception:  # noqa: BLE001, S110 - informational only
                pass
        if action:
            details["action"] = action
        runtime_url = self.client("sagemaker-runtime").meta.endpoint_url.rstrip("/")
        return Endpoint(
            name=spec_name,
            tier=tier,
            url=f"{runtime_url}/endpoints/{endpoint}/invocations",
            model_version=tags.get(TAG_VERSION),
            plan_hash=tags.get(TAG_PLAN),
            healthy=described["EndpointStatus"] == "InService",
            details=details,
        )
