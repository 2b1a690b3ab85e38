"""Turn a spec's secret reference (`${env:NAME}`, `${secret:NAME}`) into its value, at run time only.

The value is returned to the caller and nowhere else: never logged, never put into an error message.
"""

from __future__ import annotations

import os

from rscale.compiler.spec.base import SECRET_REF
from rscale.errors import ConfigurationError


def is_reference(value: str | None) -> bool:
    return bool(value) and SECRET_REF.match(value or "") is not None


def resolve(reference: str, where: str) -> str:
    """The value behind `reference`; `where` names the spec key in the error (e.g. `tracker.api_token`).

    `${env:NAME}` reads the environment. `${secret:NAME}` reads the ZenML secret NAME (its only value), and
    `${secret:NAME.KEY}` one key of it.
    """
    match = SECRET_REF.match(reference)
    if match is None:
        raise ConfigurationError(
            f"{where} must be a reference such as ${{env:NAME}}, not a literal value",
            fix=f"set {where}: ${{env:NAME}} and export NAME before `rs run`",
        )
    source, name = match.groups()
    if source == "env":
        value = os.environ.get(name, "")
        if not value:
            raise ConfigurationError(
                f"{where} is {reference}, but the environment variable {name} is not set",
                fix=f"export {name}=<value> in the shell that runs `rs run`, or point {where} at another variable",
            )
        return value
    return _zenml_secret(name, reference, where)


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
