"""`${env:NAME}` and `${secret:NAME[.KEY]}` references: how specs and stacks name secrets and account values.

They are resolved only at run time, by the code that needs the value, and the value is returned to it and
nowhere else: never logged, never put into an error message, never written to plan.json.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rscale.compiler.spec.base import SECRET_REF
from rscale.compiler.stack import ENV_REFERENCE
from rscale.errors import ConfigurationError

# A variable that may be given under another name: boto3 users set AWS_DEFAULT_REGION, where the AWS CLI v2
# and SDKs also read AWS_REGION; `${env:AWS_REGION}` takes either.
ENV_FALLBACKS = {"AWS_REGION": "AWS_DEFAULT_REGION"}


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of variable `name` (or of its ENV_FALLBACKS alternative when `name` is unset or empty)."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if not value and name in ENV_FALLBACKS:
        value = env.get(ENV_FALLBACKS[name])
    return value or None


def is_reference(value: str | None) -> bool:
    """True when the whole value is one reference (`${env:NAME}` or `${secret:NAME}`)."""
    return bool(value) and SECRET_REF.match(value or "") is not None


def resolve(value: str, where: str) -> str:
    """The value with its references replaced; `where` names the key in errors (e.g. `tracker.api_token`).

    `${env:NAME}` reads the environment (also inside a longer string, e.g. `s3://${env:BUCKET}/rs`).
    `${secret:NAME}` reads the ZenML secret NAME (its only value), `${secret:NAME.KEY}` one key of it.
    A value without references is returned as it is.
    """
    match = SECRET_REF.match(value)
    if match is not None and match.group(1) == "secret":
        return _zenml_secret(match.group(2), value, where)
    missing = [name for name in ENV_REFERENCE.findall(value) if not env_value(name)]
    if missing:
        plural = len(missing) > 1
        raise ConfigurationError(
            f"{where} is {value}, but the environment variable{'s' if plural else ''} "
            f"{', '.join(missing)} {'are' if plural else 'is'} not set",
            fix="export " + " ".join(f"{name}=<value>" for name in missing) + " in the shell that runs `rs`"
            + "".join(f" ({name} also reads {ENV_FALLBACKS[name]})" for name in missing if name in ENV_FALLBACKS),
        )
    return ENV_REFERENCE.sub(lambda m: env_value(m.group(1)) or "", value)


def resolve_optional(value: Any, where: str) -> Any:
    """Like `resolve`, for settings with a fallback: None, or one `${env:NAME}` whose variable is unset, is None.

    A value that is not a string (a port number, say) comes back as it is.
    """
    if not isinstance(value, str):
        return value
    match = SECRET_REF.match(value)
    if match is not None and match.group(1) == "env" and not env_value(match.group(2)):
        return None
    return resolve(value, where)


def _zenml_secret(name: str, reference: str, where: str) -> str:
    secret_name, _, key = name.partition(".")
    try:
        from zenml.client import Client

        values = Client().get_secret(secret_name).secret_values
    except Exception as exc:  # noqa: BLE001 - any lookup failure reads the same to a person
        raise ConfigurationError(
            f"{where} is {reference}, but the ZenML secret `{secret_name}` cannot be read ({type(exc).__name__})",
            fix=f"create it: zenml secret create {secret_name} --{key or 'value'}=<value>",
        ) from None
    if key:
        if key not in values:
            raise ConfigurationError(
                f"{where} is {reference}, but the ZenML secret `{secret_name}` has no key `{key}`",
                fix=f"keys there: {', '.join(sorted(values)) or 'none'}",
            )
        return str(values[key])
    if len(values) != 1:
        raise ConfigurationError(
            f"{where} is {reference}, but the ZenML secret `{secret_name}` holds {len(values)} values",
            fix=f"name the key: ${{secret:{secret_name}.KEY}} (keys: {', '.join(sorted(values)) or 'none'})",
        )
    return str(next(iter(values.values())))
