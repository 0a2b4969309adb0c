"""What API Gateway checks before a route's function runs, as plain data on the route.

A SAM template's `Auth` (Lambda and JWT authorizers, `ApiKeyRequired` with usage plans)
and `RequestModel` / `RequestParameters` become one `RouteAccess` per route; the
gateway's `Admission` (skylift.gateway.admission) enforces it. Everything is hashable
and round-trips through `to_dict` / `from_dict`, as specs travel to the zygotes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

AuthorizerKind = Literal["TOKEN", "REQUEST"]
DEFAULT_REST_TTL = 300  # REST APIs cache a Lambda authorizer's result 300 s by default


@dataclass(frozen=True)
class LambdaAuthorizer:
    """A Lambda authorizer: `function` decides, from the request's identity sources.

    `identity_sources` are API Gateway's expressions: "method.request.header.Authorization"
    (REST) or "$request.header.Authorization" (HTTP API). `payload` is None for a REST
    API, "1.0" or "2.0" for an HTTP API; `simple` is HTTP API's EnableSimpleResponses.
    """

    name: str
    function: str
    kind: AuthorizerKind = "TOKEN"
    identity_sources: tuple[str, ...] = ("method.request.header.Authorization",)
    ttl: int = DEFAULT_REST_TTL  # seconds; 0: no caching
    validation: str | None = None  # a TOKEN authorizer's ValidationExpression
    payload: str | None = None
    simple: bool = False


@dataclass(frozen=True)
class JwtAuthorizer:
    """An HTTP API JWT authorizer: the token's signature (keys from `jwks`, a file path or
    a loopback URL), issuer and audience are checked; `scopes` are the route's."""

    name: str
    issuer: str
    audience: tuple[str, ...]
    jwks: str
    identity_sources: tuple[str, ...] = ("$request.header.Authorization",)
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    value: str
    enabled: bool = True


@dataclass(frozen=True)
class UsagePlan:
    """A usage plan's keys, quota (`quota_limit` requests per `quota_period`: DAY, WEEK or
    MONTH) and throttle (`rate` requests a second, bursts of `burst`)."""

    plan_id: str
    keys: tuple[ApiKey, ...] = ()
    quota_limit: int | None = None
    quota_period: str = "DAY"
    rate: float | None = None
    burst: int | None = None


@dataclass(frozen=True)
class RequestCheck:
    """REST request validation: the body's JSON schema (text, draft-04) when ValidateBody,
    and the request parameters that must be present ("method.request.querystring.q")."""

    model: str | None = None
    schema: str | None = None  # JSON text: hashable, and compared as the template wrote it
    required: tuple[str, ...] = ()

    def schema_object(self) -> Any:
        return None if self.schema is None else json.loads(self.schema)


Authorizer = LambdaAuthorizer | JwtAuthorizer


@dataclass(frozen=True)
class RouteAccess:
    """Everything checked before a route's function runs, in API Gateway's order:
    API key, authorizer, then request validation."""

    api_id: str  # the API's logical id: authorizer caches and quotas are per API
    authorizer: Authorizer | None = None
    api_key_required: bool = False
    usage_plans: tuple[UsagePlan, ...] = ()
    check: RequestCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if isinstance(self.authorizer, JwtAuthorizer):
            data["authorizer"]["type"] = "JWT"
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouteAccess:
        raw = data.get("authorizer")
        authorizer: Authorizer | None = None
        if raw is not None:
            raw = dict(raw)
            if raw.pop("type", None) == "JWT":
                authorizer = JwtAuthorizer(**_tuples(raw))
            else:
                authorizer = LambdaAuthorizer(**_tuples(raw))
        plans = tuple(
            UsagePlan(
                **{
                    **_tuples({k: v for k, v in plan.items() if k != "keys"}),
                    "keys": tuple(ApiKey(**key) for key in plan.get("keys", ())),
                }
            )
            for plan in data.get("usage_plans", ())
        )
        check = data.get("check")
        return cls(
            api_id=data["api_id"],
            authorizer=authorizer,
            api_key_required=data.get("api_key_required", False),
            usage_plans=plans,
            check=RequestCheck(**_tuples(check)) if check is not None else None,
        )


def _tuples(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def is_loopback_url(url: str) -> bool:
    """Whether `url` is http(s) on this machine (the only JWKS URLs skylift reads)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
