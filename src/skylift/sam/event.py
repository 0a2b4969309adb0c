"""One entry of a function's `Events`, as the event-type readers see it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from skylift.errors import DeclarationError
from skylift.sam.cfn_yaml import kind

if TYPE_CHECKING:
    from skylift.sam.api_auth import TemplateApis


class FunctionContext(Protocol):
    """What an event handler may ask of the function that declares the event."""

    @property
    def logical_id(self) -> str: ...

    @property
    def buckets(self) -> Collection[str]:
        """The names of the buckets the template declares."""
        ...

    @property
    def apis(self) -> TemplateApis:
        """The template's APIs: authorizers, API keys, models."""
        ...

    def fail(self, message: str) -> DeclarationError: ...

    def resolve(self, value: Any, where: str) -> Any: ...

    def string_value(self, value: Any, where: str) -> str | None: ...

    def integer_value(self, value: Any, where: str) -> int | None: ...

    def boolean_value(self, value: Any, where: str) -> bool | None: ...

    def note(self, where: str, instead: str) -> None:
        """Say once, at load, that `where` is not honoured and what happens instead."""


@dataclass(frozen=True)
class SamEvent:
    """One entry of a function's Events, for an event-type handler to read."""

    function: FunctionContext
    name: str
    properties: Mapping[str, Any]

    def fail(self, message: str) -> DeclarationError:
        return self.function.fail(f"event {self.name!r}: {message}")

    def where(self, key: str) -> str:
        return f"event {self.name!r} {key}"

    def value(self, key: str) -> Any:
        return self.function.resolve(self.properties.get(key), self.where(key))

    def string(self, key: str) -> str | None:
        return self.function.string_value(self.properties.get(key), self.where(key))

    def integer(self, key: str) -> int | None:
        return self.function.integer_value(self.properties.get(key), self.where(key))

    def boolean(self, key: str) -> bool | None:
        return self.function.boolean_value(self.properties.get(key), self.where(key))

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a mapping, got {kind(value)}")
        return value
