"""The AWS stack's account values, for tests: set them, or make sure they are unset."""

from __future__ import annotations

import pytest
from aws_env import AWS_ENV


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    return AWS_ENV


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in AWS_ENV:
        monkeypatch.delenv(key, raising=False)
