"""Shared base for every spec block: unknown keys are errors, never ignored."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.functional_validators import AfterValidator

SECRET_REF = re.compile(r"^\$\{(env|secret):([A-Za-z_][A-Za-z0-9_.-]*)\}$")


class Block(BaseModel):
    """Base class of every spec block. Frozen, and strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _must_be_reference(value: str) -> str:
    if not SECRET_REF.match(value):
        raise ValueError(
            "a secret must not be written into a spec; reference it instead, "
            "for example ${env:NEPTUNE_API_TOKEN} or ${secret:neptune_token}"
        )
    return value


SecretRef = Annotated[
    str,
    AfterValidator(_must_be_reference),
    Field(description="A reference to a secret, resolved only at run time: ${env:NAME} or ${secret:NAME}."),
]

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]

__all__ = ["Block", "SecretRef", "Identifier", "SECRET_REF", "Any", "GetJsonSchemaHandler"]
