"""Errors of the services rscale calls become rscale errors naming the service, the call and the fix.

The exceptions are the services' own classes, raised the way their clients raise them (a real ClientError
from a real botocore call is in tests/serving/test_sagemaker_errors.py)."""

from __future__ import annotations

import pytest

from rscale.errors import RscaleError
from rscale.service_errors import aws_service_of, translate


def _raised_from(exc: BaseException) -> BaseException:
    """`exc` as the cause of a wrapper, as ZenML and Lightning wrap a step's error."""
    try:
        try:
            raise exc
        except BaseException as inner:
            raise RuntimeError("step failed") from inner
    except RuntimeError as outer:
        return outer


def test_snowflake_errors_name_the_query_and_the_fix() -> None:
    from snowflake.connector.errors import DatabaseError, ProgrammingError

    missing = translate(_raised_from(ProgrammingError(
        msg="SQL compilation error: Object 'EVENTS' does not exist or not authorized.", errno=2003,
        sqlstate="42S02", sfqid="01b2-abc", send_telemetry=False,
    )))  # fmt: skip
    assert "Snowflake query 01b2-abc failed (2003, 42S02)" in str(missing) and "role can read it" in str(missing.fix)
    login = translate(DatabaseError(msg="Incorrect username or password was specified.", errno=250001, send_telemetry=False))
    assert "Snowflake" in str(login) and "connections.toml" in str(login.fix)


def test_mlflow_errors_name_the_tracker_and_the_way_out() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    error = translate(_raised_from(MlflowException("Experiment 'x' does not exist", error_code=RESOURCE_DOES_NOT_EXIST)))
    assert "MLflow tracking call failed (RESOURCE_DOES_NOT_EXIST)" in str(error)
    assert "tracker: {kind: none}" in str(error.fix)


def test_zenml_errors_name_zenml_and_the_stack_commands() -> None:
    from zenml.exceptions import StackValidationError

    error = translate(StackValidationError("the stack has no orchestrator"))
    assert str(error).startswith("ZenML StackValidationError: the stack has no orchestrator")
    assert "rs stack show" in str(error.fix)


def test_throttling_and_access_errors_get_their_own_fix() -> None:
    from botocore.exceptions import ClientError

    throttled = translate(ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": 3}},
        "CreateEndpointConfig",
    ))  # fmt: skip
    assert str(throttled) == "AWS SageMaker CreateEndpointConfig failed: ThrottlingException (HTTP 400): Rate exceeded (after 3 retries)"
    assert "throttled" in str(throttled.fix)
    denied = translate(ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject"))
    assert "AWS S3 PutObject failed" in str(denied) and "s3" in str(denied.fix).lower()
    assert aws_service_of("InvokeEndpoint") == "SageMaker Runtime"
    assert aws_service_of("RegisterScalableTarget") == "Application Auto Scaling"


def test_file_errors_name_the_file_and_rscale_errors_pass_through(tmp_path) -> None:
    try:
        (tmp_path / "missing.yaml").read_text()
    except OSError as exc:
        error = translate(exc)
    assert "missing.yaml" in str(error) and "No such file" in str(error)
    own = RscaleError("mine", fix="this")
    assert translate(_raised_from(own)) is own


@pytest.mark.parametrize("exc", [KeyError("x"), ValueError("y"), AssertionError()])
def test_anything_else_is_an_internal_error_that_says_how_to_see_more(exc: Exception) -> None:
    error = translate(exc)
    assert str(error).startswith(f"internal error: {type(exc).__name__}") and "--debug" in str(error.fix)
