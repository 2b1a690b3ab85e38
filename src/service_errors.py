"""Errors of the services rscale calls (AWS, Snowflake, MLflow, ZenML, DuckDB, the file system), translated
into RscaleErrors that name the service, the call and the fix, so `rs` never shows a raw traceback.

`translate` looks at the exception and its causes; it imports a service's exception module only when that
module is already loaded (an error from it cannot exist otherwise), so it costs nothing at start-up.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from rscale.errors import RscaleError

AWS_SERVICES = {
    "sagemaker": "SageMaker",
    "sagemaker-runtime": "SageMaker Runtime",
    "application-autoscaling": "Application Auto Scaling",
    "s3": "S3",
    "ecr": "ECR",
    "iam": "IAM",
    "sts": "STS",
}
AWS_RETRIES = {"mode": "standard", "max_attempts": 4}  # botocore's own backoff for throttling and 5xx
_THROTTLED = {
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
    "SlowDown", "ProvisionedThroughputExceededException", "RequestThrottled", "RequestThrottledException",
}  # fmt: skip
_DENIED = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "ExpiredToken", "ExpiredTokenException",
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidAccessKeyId",
}  # fmt: skip
DEBUG_FIX = "run it again with `rs --debug ...` to see the traceback, and report it if it looks like rscale's fault"


def translate(exc: BaseException) -> RscaleError:
    """An RscaleError for any exception: a service's error explained, else an internal error that says how
    to see the traceback. RscaleErrors come back as they are."""
    for candidate in _chain(exc):
        if isinstance(candidate, RscaleError):
            return candidate
        for translator in (_aws, _snowflake, _mlflow, _zenml, _duckdb, _sqlite, _os):
            found = translator(candidate)
            if found is not None:
                return found
    if isinstance(exc, RecursionError):
        return RscaleError("input nested too deeply to process (RecursionError)", fix="flatten the input")
    return RscaleError(f"internal error: {type(exc).__name__}: {_short(str(exc))}", fix=DEBUG_FIX)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it (ZenML and Lightning wrap a step's error), each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _short(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _loaded(module: str) -> bool:
    return module in sys.modules


# --- AWS ------------------------------------------------------------------------------------------------
def aws_service_of(operation: str) -> str:
    """The AWS service whose API has `operation` (ClientError names the operation, not the service)."""
    import botocore.session

    session = botocore.session.get_session()
    for service, title in AWS_SERVICES.items():
        try:
            if operation in session.get_service_model(service).operation_names:
                return title
        except Exception:  # noqa: BLE001, S112 - a service model botocore lacks: try the next
            continue
    return "AWS"


def _aws(exc: BaseException) -> RscaleError | None:
    if not _loaded("botocore.exceptions"):
        return None
    from botocore import exceptions as aws

    if isinstance(exc, aws.ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code") or "Unknown")
        status = int((exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode") or 0)
        operation = exc.operation_name
        service = aws_service_of(operation)
        attempts = int((exc.response.get("ResponseMetadata", {}) or {}).get("RetryAttempts") or 0)
        message = _short(str(error.get("Message") or ""))
        if message.startswith("<"):
            message = ""  # an HTML error page from a proxy or a stand-in: nothing a person can use
        what = f"AWS {service} {operation} failed: {code} (HTTP {status or '?'})" + (f": {message}" if message else "")
        if attempts:
            what += f" (after {attempts} retries)"
        if code in _THROTTLED:
            fix = f"AWS throttled {operation} through botocore's retries; wait a minute and run it again, or ask AWS for a higher {service} quota"
        elif code in _DENIED:
            fix = f"check the AWS credentials (AWS_PROFILE or keys, not expired) and that their role may call {service}:{operation}"
        elif code == "ResourceLimitExceeded":
            fix = f"raise the {service} service quota in the AWS console, or ask for fewer or smaller instances in the spec's `serving`"
        elif code in ("ValidationException", "ValidationError", "InvalidParameterValue"):
            fix = "AWS refused a value of the request: check the spec's `serving` and the stack's `serving` settings (docs/serving.md)"
        elif status >= 500 or code in ("InternalFailure", "InternalError", "ServiceUnavailable", "InternalServerError"):
            fix = (
                "an error on AWS's side that retrying did not clear; a deployed endpoint keeps serving its previous "
                "config. Run the command again later; `rs status` shows what is live"
            )
        else:
            fix = f"see AWS's message above; `rs --debug ...` shows the full {operation} call"
        return RscaleError(what, fix=fix)
    if isinstance(exc, aws.NoCredentialsError | aws.PartialCredentialsError):
        return RscaleError(
            f"AWS credentials not found or incomplete ({type(exc).__name__})",
            fix="export AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run `aws configure`",
        )
    if isinstance(exc, aws.NoRegionError):
        return RscaleError(
            "no AWS region: boto3 does not know where to call",
            fix="set serving.region in the stack file, or export AWS_REGION (or AWS_DEFAULT_REGION)",
        )
    if isinstance(exc, aws.EndpointConnectionError | aws.ConnectTimeoutError | aws.ReadTimeoutError):
        return RscaleError(
            f"AWS could not be reached: {_short(str(exc))}",
            fix="check the network (and AWS_ENDPOINT_URL if you set one), then run it again",
        )
    if isinstance(exc, aws.BotoCoreError):
        return RscaleError(f"AWS call failed: {type(exc).__name__}: {_short(str(exc))}", fix=DEBUG_FIX)
    return None


# --- Snowflake ------------------------------------------------------------------------------------------
def _snowflake(exc: BaseException) -> RscaleError | None:
    module = type(exc).__module__ or ""
    if not module.startswith("snowflake."):
        return None
    errno = getattr(exc, "errno", None)
    sqlstate = getattr(exc, "sqlstate", None)
    query = getattr(exc, "sfqid", None)
    message = _short(str(getattr(exc, "msg", None) or getattr(exc, "message", None) or exc))
    where = f"Snowflake {'query ' + query if query else 'call'} failed"
    code = ", ".join(str(part) for part in (errno, sqlstate) if part)
    text = message.lower()
    if "authenticat" in text or "password" in text or "login" in text or errno in (250001, 390100, 390144):
        fix = "check the connection (account, user, authenticator) in the stack or connections.toml; see docs/snowflake.md"
    elif "does not exist" in text or "not authorized" in text or sqlstate == "42S02":
        fix = "check that the table or schema exists and that the connection's role can read it (`rs validate` names the query)"
    elif "could not connect" in text or "timed out" in text or errno in (250003, 251011):
        fix = "check the network and the account identifier, then run it again"
    else:
        fix = "see Snowflake's message above; `rs compile --show-sql` prints the SQL that runs"
    return RscaleError(f"{where}{f' ({code})' if code else ''}: {message}", fix=fix)


# --- MLflow, ZenML --------------------------------------------------------------------------------------
def _mlflow(exc: BaseException) -> RscaleError | None:
    if not _loaded("mlflow.exceptions"):
        return None
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return None
    return RscaleError(
        f"MLflow tracking call failed ({exc.error_code}): {_short(exc.message)}",
        fix="check the tracker settings (tracking URI, credentials); `tracker: {kind: none}` runs without tracking",
    )


def _zenml(exc: BaseException) -> RscaleError | None:
    module = type(exc).__module__ or ""
    if not module.startswith("zenml."):
        return None
    return RscaleError(
        f"ZenML {type(exc).__name__}: {_short(str(exc))}",
        fix="check the stack with `rs stack show NAME` (and `rs stack up NAME` to register it); the local store is under .rs/",
    )


# --- local files and databases --------------------------------------------------------------------------
def _duckdb(exc: BaseException) -> RscaleError | None:
    if not _loaded("duckdb") or not (type(exc).__module__ or "").startswith("duckdb"):
        return None
    text = _short(str(exc))
    if "lock" in text.lower():
        return RscaleError(
            f"the DuckDB warehouse is in use by another process: {text}",
            fix="stop the other process that holds it (another `rs run`, a notebook, a DuckDB shell) or wait for it, then run again",
        )
    return RscaleError(f"DuckDB failed: {type(exc).__name__}: {text}", fix="see DuckDB's message above; `rs validate` checks the spec's SQL")


def _sqlite(exc: BaseException) -> RscaleError | None:
    if not _loaded("sqlite3") and not _loaded("sqlalchemy"):
        return None
    name = type(exc).__name__
    text = _short(str(exc))
    if "OperationalError" in name and "locked" in text:
        return RscaleError(
            f"a local store under .rs/ is locked by another process: {text}",
            fix="wait for the other `rs` command to finish, then run again",
        )
    return None


def _os(exc: BaseException) -> RscaleError | None:
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    target = exc.filename if exc.filename is not None else "a file"
    reason = exc.strerror or type(exc).__name__
    return RscaleError(
        f"cannot use {target}: {reason}",
        fix="check the path exists and is readable/writable by you (and that the disk is not full)",
    )
