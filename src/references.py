"""`${env:NAME}` and `${secret:NAME[.KEY]}` references: how specs and stacks name secrets and account values.

One resolver for both: a single value (`resolve`, `resolve_optional`) and a whole stack (`resolve_stack`) go
through the same substitution and the same "not set" error, which names the key paths that hold the references,
every unset variable at once, and the `export` that fixes it.

They are resolved only at run time, by the code that needs the value, and the value is returned to it and
nowhere else: never logged, never put into an error message, never written to plan.json. Compiling never needs
the variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from rscale.compiler.spec.base import SECRET_REF
from rscale.compiler.stack import ENV_REFERENCE, StackSpec
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


def resolve(value: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """The value with its references replaced; `where` names the key in errors (e.g. `tracker.api_token`).

    `${env:NAME}` reads the environment (also inside a longer string, e.g. `s3://${env:BUCKET}/rs`).
    `${secret:NAME}` reads the ZenML secret NAME (its only value), `${secret:NAME.KEY}` one key of it.
    A value without references is returned as it is.
    """
    match = SECRET_REF.match(value)
    if match is not None and match.group(1) == "secret":
        return _zenml_secret(match.group(2), value, where)
    missing = [name for name in dict.fromkeys(ENV_REFERENCE.findall(value)) if not env_value(name, environ)]
    if missing:
        raise _unset(f"{where} is {value}", missing)
    return _substitute(value, environ)


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


def missing_variables(stack: StackSpec, environ: Mapping[str, str] | None = None) -> list[str]:
    """The variables the stack references that are unset or empty, in first-seen order."""
    return [name for name in stack.env_references() if not env_value(name, environ)]


def resolve_stack(stack: StackSpec, environ: Mapping[str, str] | None = None) -> StackSpec:
    """The stack with every `${env:NAME}` replaced by the variable's value, so account ids never sit in a plan.

    Raises one ConfigurationError naming every unset variable and the keys that reference it; a value that
    makes a key invalid is reported with the reference in its place, never the value.
    """
    tree = stack.model_dump(mode="json", by_alias=True, exclude_unset=True)
    holders = [path for path, text in _strings(tree) if ENV_REFERENCE.search(text)]
    if not holders:
        return stack
    missing = missing_variables(stack, environ)
    if missing:
        keys = [path for path, text in _strings(tree) if set(ENV_REFERENCE.findall(text)) & set(missing)]
        raise _unset(f"stack `{stack.name}` has `${{env:...}}` in {', '.join(f'`{k}`' for k in keys)}", missing)
    from pydantic import ValidationError

    try:
        return StackSpec.model_validate(_substitute_tree(tree, environ))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "the stack"
        raise ConfigurationError(
            f"stack `{stack.name}`: with the environment's values, `{where}` is not valid: "
            f"{_mask(first['msg'].removeprefix('Value error, '), stack.env_references(), environ)}",
            fix="check the variables that key references (the values are not shown here)",
        ) from None


def _unset(where: str, missing: list[str]) -> ConfigurationError:
    """The one "variable not set" error: where the references are, which variables, and the export to run."""
    plural = len(missing) > 1
    return ConfigurationError(
        f"{where}, but the environment variable{'s' if plural else ''} "
        f"{', '.join(missing)} {'are' if plural else 'is'} not set",
        fix="export " + " ".join(f"{name}=<value>" for name in missing)
        + " in the shell that runs `rs` (docs/stacks.md says what each holds)"
        + "".join(f"; {name} may also be given as {ENV_FALLBACKS[name]}" for name in missing if name in ENV_FALLBACKS),
    )


def _substitute(text: str, environ: Mapping[str, str] | None) -> str:
    return ENV_REFERENCE.sub(lambda m: env_value(m.group(1), environ) or "", text)


def _substitute_tree(value: Any, environ: Mapping[str, str] | None) -> Any:
    if isinstance(value, str):
        return _substitute(value, environ)
    if isinstance(value, dict):
        return {k: _substitute_tree(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_tree(v, environ) for v in value]
    return value


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a dumped tree, with its dotted key path (list items as `key[0]`)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _mask(text: str, names: list[str], environ: Mapping[str, str] | None) -> str:
    """Put the references back where their values appear, so no value from the environment is shown."""
    values = {name: env_value(name, environ) or "" for name in names}
    for name in sorted(values, key=lambda n: -len(values[n])):
        if values[name]:
            text = text.replace(values[name], "${env:" + name + "}")
    return text


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
