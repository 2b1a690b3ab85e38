"""Shared base for every spec block: unknown keys are errors, never ignored.

The modules that define pydantic models (the spec's, `rscale.compiler.stack`, `rscale.compiler.plan`) leave out
`from __future__ import annotations`: with it pydantic evaluates each field's annotation from its string when
the class is created, a cost every `rs` start pays for ~70 models; a method's forward reference is quoted instead.
"""

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.functional_validators import AfterValidator
from pydantic_core import PydanticCustomError

SECRET_REF = re.compile(r"^\$\{(env|secret):([A-Za-z_][A-Za-z0-9_.-]*)\}$")


class Block(BaseModel):
    """Base class of every spec block. Frozen, strict about unknown keys, and no inf/nan numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


def spec_value_error(message: str, fix: str | None = None) -> PydanticCustomError:
    """A validator's error that carries its own fix; `validate` renders both (error type `rs_value`)."""
    return PydanticCustomError("rs_value", "{message}", {"message": message, "fix": fix or ""})


def _must_be_reference(value: str) -> str:
    if not SECRET_REF.match(value):
        # Never repeat the value: it may be the secret itself.
        raise spec_value_error(
            "a secret must not be written into a spec",
            "reference it instead, e.g. ${env:NEPTUNE_API_TOKEN} or ${secret:neptune_token}",
        )
    return value


SecretRef = Annotated[
    str,
    AfterValidator(_must_be_reference),
    Field(
        description="A reference to a secret, resolved only at run time: ${env:NAME} or ${secret:NAME}.",
        json_schema_extra={"pattern": SECRET_REF.pattern},
    ),
]

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def no_items() -> list[Any]:
    """An empty list: a list field's `default_factory`. Pydantic reads each factory's signature when the model is
    created, and the builtin `list`'s is parsed from its text signature (about 3 ms per `rs` start for eight
    fields); a plain function's is read directly. Same default, same schema."""
    return []

__all__ = ["Block", "SecretRef", "Identifier", "SECRET_REF", "spec_value_error", "no_items", "Any", "GetJsonSchemaHandler"]
