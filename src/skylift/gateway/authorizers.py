"""Lambda authorizers, run as API Gateway runs them before a route's function.

The authorizer function gets API Gateway's authorizer event (REST TOKEN: `type`,
`authorizationToken`, `methodArn`; REST REQUEST: the proxy event's request fields plus
`methodArn`; HTTP API payload 2.0: `routeArn`, `identitySource`, the 2.0 request fields)
through the same invoker as any function. Its answer (an IAM policy, or HTTP API's
simple `isAuthorized`) is cached by identity source for the authorizer's TTL; a cached
policy is evaluated against each request's own ARN, as API Gateway does.

Refusals are AWS's: 401 `{"message":"Unauthorized"}` when an identity source is missing
or the function raises "Unauthorized"; 403 on a deny (REST's `{"Message": "User is not
authorized to access this resource with an explicit deny"}`, HTTP API's
`{"message":"Forbidden"}`); 500 when the authorizer fails or answers garbage. Why a 500
happened goes to skylift's log, never to the client.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from skylift.account import region
from skylift.engine.instance import InvocationResult
from skylift.errors import SkyliftError
from skylift.events import _common
from skylift.events.apigw_v1 import RestApiV1
from skylift.events.apigw_v2 import HttpApiV2
from skylift.events.http import HttpRequest, HttpResponse, RequestIds, RouteMatch
from skylift.gateway.iam_policy import PolicyError, evaluate
from skylift.route_access import LambdaAuthorizer
from skylift.spec import HttpRoute

logger = logging.getLogger("skylift.gateway")
Invoke = Callable[[str, bytes], Awaitable[InvocationResult]]
MAX_CACHED = 10_000


def _json(status: int, body: bytes, error_type: str | None = None) -> HttpResponse:
    response = _common.json_response(status, body)
    if error_type is not None:
        response.headers.append(("x-amzn-ErrorType", error_type))
    return response


def unauthorized() -> HttpResponse:
    return _json(401, b'{"message":"Unauthorized"}', "UnauthorizedException")


def denied(rest: bool, explicit: bool) -> HttpResponse:
    """403: REST's words (with a capital M, as API Gateway sends them), or HTTP API's."""
    if not rest:
        return _json(403, b'{"message":"Forbidden"}')
    text = b"User is not authorized to access this resource"
    if explicit:
        text += b" with an explicit deny"
    return _json(403, b'{"Message":"' + text + b'"}', "AccessDeniedException")


def failed(rest: bool) -> HttpResponse:
    if rest:
        return _json(500, b'{"message": null}', "AuthorizerConfigurationException")
    return _json(500, b'{"message":"Internal Server Error"}')


class AuthorizerFailed(Exception):
    """Raised when an authorizer's answer is not one API Gateway accepts (a 500)."""


@dataclass(frozen=True)
class _Verdict:
    """What an authorizer answered, as cached: a policy to evaluate per request, or an
    HTTP API simple response; and the context for requestContext.authorizer."""

    policy: Any  # policyDocument, or None for a simple response
    authorized: bool  # a simple response's isAuthorized
    principal_id: Any
    context: dict[str, Any]


def arn(route_api: str, ids: RequestIds, method: str, path: str) -> str:
    """The methodArn (REST) or routeArn (HTTP API) of a request."""
    stage = ids.stage or ("Prod" if route_api == "rest" else "$default")
    return f"arn:aws:execute-api:{region()}:{ids.account_id}:{ids.api_id}/{stage}/{method}{path}"


def identity_value(source: str, request: HttpRequest, ids: RequestIds) -> str | None:
    """The value of one identity source expression, or None when the request lacks it."""
    expression = source.strip().removeprefix("$")
    if expression.startswith(("method.request.header.", "request.header.")):
        name = expression.rsplit("header.", 1)[1].lower()
        values = [v for k, v in request.headers if k.lower() == name]
        return ",".join(values) if values else None
    if expression.startswith(("method.request.querystring.", "request.querystring.")):
        name = expression.rsplit("querystring.", 1)[1]
        found = _common.parse_query(request.raw_query).get(name)
        return ",".join(found) if found else None
    if expression.startswith("context."):
        known = {
            "identity.sourceIp": request.source_ip,
            "httpMethod": request.method,
            "stage": ids.stage or "",
            "apiId": ids.api_id,
            "accountId": ids.account_id,
            "domainName": request.host,
        }
        return known.get(expression.removeprefix("context."), "")
    return None  # stage variables: skylift has none


class LambdaAuthorizers:
    """Runs routes' Lambda authorizers, caching their answers by identity source."""

    def __init__(self, invoke: Invoke, clock: Callable[[], float] = time.monotonic) -> None:
        self._invoke = invoke
        self._clock = clock
        self._cache: dict[tuple[str, str, tuple[str, ...]], tuple[float, _Verdict]] = {}

    async def authorize(
        self,
        api_id: str,
        authorizer: LambdaAuthorizer,
        route: HttpRoute,
        request: HttpRequest,
        match: RouteMatch,
        ids: RequestIds,
    ) -> HttpResponse | dict[str, Any]:
        """A refusal to send, or what goes into the event's requestContext.authorizer."""
        rest = route.api == "rest"
        identity = []
        for source in authorizer.identity_sources:
            value = identity_value(source, request, ids)
            if not value:
                return unauthorized()
            identity.append(value)
        validation = authorizer.validation if authorizer.kind == "TOKEN" else None
        if validation and re.fullmatch(validation, identity[0]) is None:
            return unauthorized()
        request_arn = arn(route.api or "rest", ids, request.method, unquote(request.raw_path))
        key = (api_id, authorizer.name, tuple(identity))
        cached = self._cache.get(key) if authorizer.ttl > 0 and identity else None
        started = self._clock()
        if cached is not None and cached[0] > started:
            verdict = cached[1]
        else:
            event = self._event(authorizer, route, request, match, ids, identity, request_arn)
            try:
                verdict = await self._run(authorizer, event)
            except _Unauthorized:
                return unauthorized()
            except AuthorizerFailed as exc:
                logger.error(
                    "authorizer %r failed (API Gateway answers 500): %s", authorizer.name, exc
                )
                return failed(rest)
            if authorizer.ttl > 0 and identity:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = (started + authorizer.ttl, verdict)
        latency = int((self._clock() - started) * 1000)
        if verdict.policy is None:
            if not verdict.authorized:
                return denied(rest, explicit=True)
        else:
            try:
                decision = evaluate(verdict.policy, request_arn)
            except PolicyError as exc:
                logger.error("authorizer %r returned a bad policy (500): %s", authorizer.name, exc)
                return failed(rest)
            if decision != "allow":
                return denied(rest, explicit=decision == "explicit_deny")
        if not rest:
            return {"lambda": verdict.context}
        out: dict[str, Any] = {"principalId": verdict.principal_id}
        out.update(verdict.context)
        out["integrationLatency"] = latency
        return out

    async def _run(self, authorizer: LambdaAuthorizer, event: dict[str, Any]) -> _Verdict:
        try:
            result = await self._invoke(authorizer.function, orjson.dumps(event))
        except SkyliftError as exc:
            raise AuthorizerFailed(
                f"its function {authorizer.function!r} could not run: {exc}"
            ) from None
        try:
            answer = orjson.loads(result.payload)
        except orjson.JSONDecodeError:
            raise AuthorizerFailed("it returned something that is not JSON") from None
        if result.error is not None:
            if isinstance(answer, dict) and answer.get("errorMessage") == "Unauthorized":
                raise _Unauthorized
            message = answer.get("errorMessage") if isinstance(answer, dict) else answer
            raise AuthorizerFailed(f"its function raised {message!r}")
        if not isinstance(answer, dict):
            raise AuthorizerFailed(f"it returned {answer!r}, not an object")
        context = answer.get("context") or {}
        if not isinstance(context, dict):
            raise AuthorizerFailed(f"its context must be an object, got {context!r}")
        if authorizer.simple:
            authorized = answer.get("isAuthorized")
            if not isinstance(authorized, bool):
                raise AuthorizerFailed(
                    f"a simple response needs isAuthorized true or false, got {authorized!r}"
                )
            return _Verdict(None, authorized, None, context)
        if "policyDocument" not in answer:
            raise AuthorizerFailed("its answer has no policyDocument")
        if authorizer.payload is None:  # REST: principalId required, context values flat
            if "principalId" not in answer:
                raise AuthorizerFailed("its answer has no principalId")
            flat: dict[str, Any] = {}
            for name, value in context.items():
                if isinstance(value, dict | list):
                    raise AuthorizerFailed(
                        f"context[{name!r}] is an object or array; a REST API takes only "
                        "strings, numbers and booleans"
                    )
                # API Gateway hands the context to the function as strings.
                flat[name] = _text(value)
            context = flat
        return _Verdict(answer["policyDocument"], False, answer.get("principalId"), context)

    def _event(
        self,
        authorizer: LambdaAuthorizer,
        route: HttpRoute,
        request: HttpRequest,
        match: RouteMatch,
        ids: RequestIds,
        identity: list[str],
        request_arn: str,
    ) -> dict[str, Any]:
        if authorizer.payload is None and authorizer.kind == "TOKEN":
            return {"type": "TOKEN", "authorizationToken": identity[0], "methodArn": request_arn}
        if authorizer.payload == "2.0":
            full = HttpApiV2().event(request, match, ids)
            event: dict[str, Any] = {
                "version": "2.0",
                "type": "REQUEST",
                "routeArn": request_arn,
                "identitySource": identity,
            }
        else:
            full = RestApiV1().event(request, match, ids)
            event = {"type": "REQUEST", "methodArn": request_arn}
            if authorizer.payload == "1.0":
                joined = ",".join(identity)
                event = {"version": "1.0", **event, "identitySource": joined}
                event["authorizationToken"] = joined
        full.pop("body", None)
        full.pop("isBase64Encoded", None)
        event.update(full)
        return event


class _Unauthorized(Exception):
    pass


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
