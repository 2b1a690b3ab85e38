"""Ask AWS whether a stack's bucket, IAM roles and container registry exist and are reachable from here.

`rs stack up NAME --check` runs it. boto3 is imported only here, and honours AWS_ENDPOINT_URL, so tests
point it at moto's server on 127.0.0.1.
"""

from __future__ import annotations

from rscale.compiler.stack import StackSpec
from rscale.references import env_value, resolve_stack
from rscale.service_errors import AWS_RETRIES


def _bucket_of(uri: str | None) -> str | None:
    if not uri:
        return None
    return uri.removeprefix("s3://").split("/", 1)[0] or None


def check_aws_access(stack: StackSpec) -> list[str]:
    """Problems found reaching the stack's AWS resources; empty when every one answered. Names, never secrets."""
    resolved = resolve_stack(stack)
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    region = resolved.serving.region or resolved.orchestrator.region or env_value("AWS_REGION")
    session = boto3.session.Session(region_name=region)
    retries = Config(retries=dict(AWS_RETRIES))  # throttling and 5xx: botocore's bounded backoff
    try:
        account = session.client("sts", config=retries).get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        return [f"stack `{stack.name}`: no usable AWS credentials ({type(exc).__name__}); set AWS_PROFILE or keys"]
    problems: list[str] = []
    buckets = [
        _bucket_of(resolved.artifact_store.path) if resolved.artifact_store.flavor == "s3" else None,
        resolved.step_operator.bucket if resolved.step_operator else None,
        resolved.orchestrator.bucket,
        _bucket_of(resolved.serving.s3_prefix),
    ]
    s3 = session.client("s3", config=retries)
    for bucket in dict.fromkeys(b for b in buckets if b):
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            problems.append(f"stack `{stack.name}`: S3 bucket `{bucket}` is not reachable ({_code(exc)})")
    roles = [
        resolved.step_operator.role if resolved.step_operator else None,
        resolved.orchestrator.execution_role,
        resolved.serving.role,
    ]
    iam = session.client("iam", config=retries)
    for role in dict.fromkeys(r for r in roles if r):
        try:
            iam.get_role(RoleName=role.rsplit("/", 1)[-1])
        except ClientError as exc:
            problems.append(f"stack `{stack.name}`: IAM role `{role}` is not reachable ({_code(exc)})")
    registry = resolved.container_registry
    if registry is not None and registry.flavor == "aws":
        registry_account = registry.uri.split(".", 1)[0]
        if registry_account != account:
            problems.append(
                f"stack `{stack.name}`: the container registry belongs to account {registry_account}, "
                f"but these credentials are for account {account}"
            )
        else:
            try:
                session.client("ecr", config=retries).describe_repositories(registryId=registry_account, maxResults=1)
            except ClientError as exc:
                problems.append(f"stack `{stack.name}`: ECR registry `{registry.uri}` is not reachable ({_code(exc)})")
    return problems


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code") or type(exc).__name__)
