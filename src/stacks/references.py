"""`${env:NAME}` references in a stack, resolved at run time so account ids and buckets never sit in a plan.

`${env:AWS_REGION}` falls back to AWS_DEFAULT_REGION (rscale.references.ENV_FALLBACKS).

Compiling never needs the variables; registering or running on the stack does, and then every missing
variable is named at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rscale.compiler.stack import ENV_REFERENCE, StackSpec
from rscale.errors import ConfigurationError
from rscale.references import ENV_FALLBACKS, env_value


def missing_variables(stack: StackSpec, environ: Mapping[str, str] | None = None) -> list[str]:
    """The variables the stack references that are unset or empty."""
    env = os.environ if environ is None else environ
    return [name for name in stack.env_references() if not env_value(name, env)]


def resolve_references(stack: StackSpec, environ: Mapping[str, str] | None = None) -> StackSpec:
    """The stack with every `${env:NAME}` replaced by the variable's value. Raises naming each missing one."""
    env = os.environ if environ is None else environ
    missing = missing_variables(stack, env)
    if missing:
        raise ConfigurationError(
            f"stack `{stack.name}` references environment variable{'s' if len(missing) > 1 else ''} "
            f"that {'are' if len(missing) > 1 else 'is'} not set: {', '.join(missing)}",
            fix="export " + " ".join(f"{name}=..." for name in missing) + " (docs/stacks.md says what each holds"
            + "".join(f"; {name} may also be given as {ENV_FALLBACKS[name]}" for name in missing if name in ENV_FALLBACKS)
            + ")",
        )
    if not stack.env_references():
        return stack
    tree = _substitute(stack.model_dump(mode="json", by_alias=True, exclude_unset=True), env)
    from pydantic import ValidationError

    try:
        return StackSpec.model_validate(tree)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "the stack"
        raise ConfigurationError(
            f"stack `{stack.name}`: with the environment's values, `{where}` is not valid: "
            f"{_mask(first['msg'].removeprefix('Value error, '), stack, env)}",
            fix="check the variables that key references (the values are not shown here)",
        ) from None


def _mask(text: str, stack: StackSpec, env: Mapping[str, str]) -> str:
    """Put the references back where their values appear, so no value from the environment is shown."""
    values = {name: env_value(name, env) or "" for name in stack.env_references()}
    for name in sorted(values, key=lambda n: -len(values[n])):
        if values[name]:
            text = text.replace(values[name], "${env:" + name + "}")
    return text


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return ENV_REFERENCE.sub(lambda m: env_value(m.group(1), env) or "", value)
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    return value
