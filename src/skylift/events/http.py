"""Plain data the HTTP gateway hands to the API Gateway event adapters, and gets back.

The adapters (`apigw_v1`, `apigw_v2`) are pure: request in, event dict out; handler
result in, `HttpResponse` out. They never touch sockets or processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from skylift.account import ACCOUNT_ID


# HttpRequest and RequestIds are built for every request: plain slotted dataclasses, as
# a frozen one's __init__ costs five times as much (measured: 0.64 us against 0.12 us).
@dataclass(slots=True)
class HttpRequest:
    """An HTTP request as received, before any API Gateway interpretation."""

    method: str  # upper case, e.g. "POST"
    raw_path: str  # as on the request line, still percent-encoded, no query string
    raw_query: str  # after '?', still percent-encoded; "" when absent
    headers: list[tuple[str, str]]  # in arrival order, names as sent (any case)
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    host: str = "127.0.0.1:8080"


@dataclass(frozen=True)
class RouteMatch:
    """Which declared route a request matched."""

    resource: str  # the route's path template, e.g. "/items/{id}" or "/{proxy+}"
    route_key: str  # HTTP API style, e.g. "POST /items/{id}" or "$default"
    path_parameters: dict[str, str]  # decoded values; {} when the route has none


@dataclass(slots=True)
class RequestIds:
    """Identifiers and times API Gateway stamps on a request."""

    request_id: str  # API Gateway's requestContext.requestId
    time_epoch_ms: int
    api_id: str = "skylift"
    account_id: str = ACCOUNT_ID
    stage: str | None = None  # None: "Prod" for REST, "$default" for HTTP APIs
    # What the route's authorizer put in requestContext.authorizer, shaped for the
    # payload format (see skylift.gateway.admission); None: no authorizer ran.
    authorizer: dict[str, Any] | None = None
    api_key: str | None = None  # the x-api-key a REST API checked, and its key's id
    api_key_id: str | None = None
    # A REST API's requestContext.extendedRequestId (its `x-amz-apigw-id`), which differs
    # from its requestId; "" means the same as `request_id` (an HTTP API's are one id).
    extended_request_id: str = ""


@dataclass
class HttpResponse:
    """What the gateway writes back: status, header pairs (repeats allowed), body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class MalformedResponse(Exception):
    """Raised when a handler's return value is not a valid proxy integration response."""


class ApiGatewayFormat(Protocol):
    """One API Gateway payload format: builds events, renders results and errors."""

    version: str

    def event(self, request: HttpRequest, match: RouteMatch, ids: RequestIds) -> dict[str, Any]:
        """The Lambda event for `request`."""

    def response(self, result: Any) -> HttpResponse:
        """The HTTP response for a handler's (JSON-decoded) result; raise MalformedResponse."""

    def function_error(self) -> HttpResponse:
        """The response when the function failed, timed out, or returned garbage."""

    def not_found(self) -> HttpResponse:
        """The response for a request no route matches (404)."""

    def too_large(self) -> HttpResponse:
        """The response for a request over the payload limit (413)."""
