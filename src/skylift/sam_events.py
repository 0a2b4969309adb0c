"""SAM event types: each turns one entry of a function's `Events` into a trigger.

Supporting another type is one function added to `EVENT_TYPES` (plus, for a trigger
that is not HTTP, a `FunctionSpec` field to carry what it returns).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from skylift.errors import DeclarationError
from skylift.spec import HttpRoute, PayloadVersion


class FunctionContext(Protocol):
    """What an event handler may ask of the function that declares the event."""

    def fail(self, message: str) -> DeclarationError: ...

    def string_value(self, value: Any, where: str) -> str | None: ...


@dataclass(frozen=True)
class SamEvent:
    """One entry of a function's Events, for an event-type handler to read."""

    function: FunctionContext
    name: str
    properties: Mapping[str, Any]

    def fail(self, message: str) -> DeclarationError:
        return self.function.fail(f"event {self.name!r}: {message}")

    def string(self, key: str) -> str | None:
        return self.function.string_value(self.properties.get(key), f"event {self.name!r} {key}")


def _methods(method: str) -> tuple[str, ...]:
    upper = method.upper()
    return ("ANY",) if upper in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else (upper,)


def _api_event(event: SamEvent) -> HttpRoute:
    path, method = event.string("Path"), event.string("Method")
    if path is None or method is None:
        missing = "Path" if path is None else "Method"
        raise event.fail(
            f"an Api event needs Properties.{missing} (e.g. Path: /items, Method: get): add it"
        )
    return HttpRoute(path, _methods(method), "1.0", "rest")


def _http_api_event(event: SamEvent) -> HttpRoute:
    path, method = event.string("Path"), event.string("Method")
    payload = event.string("PayloadFormatVersion") or "2.0"
    if payload not in ("1.0", "2.0"):
        raise event.fail(f"PayloadFormatVersion {payload!r} is unknown: use '1.0' or '2.0'")
    version: PayloadVersion = "1.0" if payload == "1.0" else "2.0"
    if path is None and method is None:
        path, method = "$default", "ANY"  # SAM's catch-all route for an HttpApi event
    elif path is None or method is None:
        missing = "Path" if path is None else "Method"
        raise event.fail(
            f"an HttpApi event needs both Path and Method, or neither (for the $default "
            f"route): add {missing}"
        )
    return HttpRoute(path, _methods(method), version, "http")


EVENT_TYPES: dict[str, Callable[[SamEvent], HttpRoute]] = {
    "Api": _api_event,
    "HttpApi": _http_api_event,
}
