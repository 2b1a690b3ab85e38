"""References resolve only at run time, name every missing variable, and never echo a value."""

from __future__ import annotations

import pytest

from rscale.errors import ConfigurationError
from rscale.references import is_reference, resolve


def test_env_references_resolve_whole_or_inside_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RS_TEST_BUCKET", "my-bucket")
    monkeypatch.setenv("RS_TEST_TOKEN", "s3cr3t-token")
    assert resolve("${env:RS_TEST_TOKEN}", "tracker.api_token") == "s3cr3t-token"
    assert resolve("s3://${env:RS_TEST_BUCKET}/rscale", "serving.s3_prefix") == "s3://my-bucket/rscale"
    assert resolve("eu-west-1", "serving.region") == "eu-west-1"  # a literal is returned as it is
    assert is_reference("${env:RS_TEST_TOKEN}") and not is_reference("s3://${env:RS_TEST_BUCKET}/x")


def test_missing_variables_are_all_named_with_the_key_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RS_TEST_A", raising=False)
    monkeypatch.delenv("RS_TEST_B", raising=False)
    with pytest.raises(ConfigurationError) as failed:
        resolve("${env:RS_TEST_A}-${env:RS_TEST_B}", "serving.role")
    assert "serving.role" in str(failed.value) and "RS_TEST_A, RS_TEST_B are not set" in str(failed.value)
    assert failed.value.fix and "export RS_TEST_A=<value> RS_TEST_B=<value>" in failed.value.fix


def test_a_value_never_appears_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RS_TEST_SET", "value-that-must-not-leak")
    monkeypatch.delenv("RS_TEST_UNSET", raising=False)
    with pytest.raises(ConfigurationError) as failed:
        resolve("${env:RS_TEST_SET}:${env:RS_TEST_UNSET}", "warehouse.password")
    assert "value-that-must-not-leak" not in f"{failed.value} {failed.value.fix}"
