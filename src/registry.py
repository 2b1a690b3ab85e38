"""One registry pattern for every adapter family (warehouses, models, baselines, trackers, serving tiers).

An entry is a name, a pydantic config class (light, imported by the compiler) and the dotted path of
its implementation, imported only when a stage needs it. So listing or validating never imports torch,
zenml, boto3 or snowpark, and adding an adapter is one config class plus one implementation module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel

C = TypeVar("C", bound=type[BaseModel])


@dataclass(frozen=True)
class Entry:
    name: str
    config: type[BaseModel]
    impl: str  # "package.module:attribute", imported lazily

    def load(self) -> Any:
        module_name, _, attribute = self.impl.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


class Registry(Generic[C]):
    """A named family of adapters, keyed by the value of one discriminator field (`type`, `kind`, `tier`)."""

    def __init__(self, family: str, key: str) -> None:
        self.family = family
        self.key = key
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, impl: str) -> Callable[[C], C]:
        def decorate(config: C) -> C:
            field = cast(type[BaseModel], config).model_fields.get(self.key)
            if field is None or getattr(field.annotation, "__args__", (None,)) != (name,):
                raise TypeError(f"{config.__name__} must declare `{self.key}: Literal[{name!r}]`")
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._entries[name] = Entry(name, config, impl)
            return config

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def configs(self) -> tuple[type[BaseModel], ...]:
        return tuple(entry.config for entry in self._entries.values())

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.family} {name!r}; registered: {', '.join(self.names())}") from None

    def load(self, name: str) -> Any:
        """Import and return the implementation registered under `name`."""
        return self.entry(name).load()
