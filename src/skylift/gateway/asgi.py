"""The HTTP gateway as a plain ASGI callable: request -> API Gateway event -> invoke ->
proxy response. It is the hot path, so it avoids frameworks and needless copies."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

import orjson

from skylift.asgi_types import Asgi, Receive, Scope, Send, lifespan
from skylift.engine.instance import InvocationResult
from skylift.engine.invoker import Invoker, Soon
from skylift.errors import SkyliftError, Throttled
from skylift.events.apigw_v1 import RestApiV1
from skylift.events.apigw_v2 import HttpApiV2
from skylift.events.http import (
    ApiGatewayFormat,
    HttpRequest,
    HttpResponse,
    MalformedResponse,
    RequestIds,
    RouteMatch,
)
from skylift.gateway.admission import Admission
from skylift.gateway.guard import Guard, refused
from skylift.gateway.routing import aws_service, control_path
from skylift.gateway.signatures import verified
from skylift.ids import gateway_id
from skylift.ids import request_id as new_request_id
from skylift.openapi_served import TemplateDocs
from skylift.sources.http import Router, Target
from skylift.spec import HttpRoute

logger = logging.getLogger("skylift.gateway")
# The scope key where the front puts header names as the client sent them (ASGI lowercases
# them, but a REST API event carries them in the client's case).
HEADER_NAMES = "skylift.header_names"
MAX_BODY = 6 * 1024 * 1024  # API Gateway's (and Lambda's) synchronous payload limit
FORMATS: dict[str, ApiGatewayFormat] = {"1.0": RestApiV1(), "2.0": HttpApiV2()}
V2 = HttpApiV2()
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
_NO_BODY = frozenset({204, 304})
SIGNED = frozenset({"sqs", "s3", "lambda"})  # the APIs --credentials guards with SigV4
# What both kinds of API Gateway answer when the function is throttled.
TOO_MANY_REQUESTS = HttpResponse(
    429, [("Content-Type", "application/json")], b'{"message":"Too Many Requests"}'
)


class Gateway:
    """An ASGI app serving a platform's HTTP routes, and AWS's APIs beside them.

    AWS SDK requests are told from the app's own by the exact protocol markers the SDKs
    send (`routing.aws_service`). Everything else is the app's: `dispatch` invokes a
    function route's function, for this ASGI path and for the HTTP front (`front.py`).
    """

    def __init__(
        self,
        router: Router,
        invoker: Invoker,
        *,
        services: Mapping[str, Asgi] | None = None,
        guard: Guard | None = None,
        docs: TemplateDocs | None = None,
    ) -> None:
        self.router = router
        self.invoker = invoker
        self.services = dict(services or {})
        self.guard = guard
        self.docs = docs  # a template app's /openapi.json and /docs, where it has no route
        self.verifier = guard.verifier() if guard is not None else None
        self.admission = Admission(invoker.invoke)  # authorizers, API keys, validation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        if self.services:
            name = scope_service(scope)
            service = self.services.get(name)
            if self.guard is not None and await refused(
                self.guard, scope, name if service is not None else None, send
            ):
                return
            if (
                service is not None
                and self.verifier is not None
                and name in SIGNED
                and not _bearer(self.guard, scope)
            ):
                checked = await verified(self.verifier, name, scope, receive, send)
                if checked is None:
                    return
                receive = checked
            if service is not None:
                scope["skylift.route"] = "aws:" + name  # for HTTP metrics
                await service(scope, receive, send)
                return
        method: str = scope["method"]
        matched = self.router.match(method, scope["path"])
        if matched is None:
            await _drain(receive)
            if self.docs is not None and self.docs.handles(method, scope["path"]):
                scope["skylift.route"] = scope["path"]  # for HTTP metrics
                await self.docs(scope, receive, send)
                return
            await _respond(send, V2.not_found())
            return
        scope["skylift.route"] = matched[0].route.path  # for HTTP metrics
        body = await _read_body(scope, receive)
        if body is DISCONNECTED:
            return  # the client left mid-upload: the function never sees a truncated body
        if not isinstance(body, bytes):
            await _respond(send, too_large(matched[0]))
            return
        client = scope.get("client")
        server = scope.get("server")
        raw_path = scope.get("raw_path")
        headers = _decode_headers(scope["headers"], scope.get(HEADER_NAMES))
        host = next((v for k, v in headers if k.lower() == "host"), None)
        request = HttpRequest(
            method=method,
            raw_path=raw_path.decode("latin-1") if raw_path else scope["path"],
            raw_query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=body,
            source_ip=client[0] if client else "127.0.0.1",
            protocol="HTTP/" + scope["http_version"],
            host=host or (f"{server[0]}:{server[1]}" if server else "localhost"),
        )
        await _respond(send, await self.dispatch(matched, request, server[1] if server else 80))

    async def dispatch(
        self, matched: tuple[Target, RouteMatch], request: HttpRequest, port: int
    ) -> HttpResponse:
        """A function route's request, whole: event -> invoke -> the proxy response, with
        API Gateway's request id headers. Both the HTTP front and the ASGI path
        call it; `port` is the server's, for `X-Forwarded-Port`.
        """
        prepared = self.prepare(matched, request, port)
        if prepared is None:  # admission first (authorizers, API keys, validation)
            target, match = matched
            ids = self.request_ids(target)
            request.headers.extend(_forwarded(request.headers, request.source_ip, port))
            admitted = await self.admission.check(target, request, match, ids)
            if isinstance(admitted, HttpResponse):
                return _with_id(admitted, _ids_of(ids), target.route)
            prepared = self.prepare(matched, request, port, admitted)
            assert prepared is not None
        if isinstance(prepared, HttpResponse):
            return prepared
        return await self.invoke(prepared)

    def request_ids(self, target: Target) -> RequestIds:
        return new_ids(target.route)

    def prepare(
        self,
        matched: tuple[Target, RouteMatch],
        request: HttpRequest,
        port: int,
        ids: RequestIds | None = None,
    ) -> Prepared | HttpResponse | None:
        """The invocation a function route's request makes, its event built; None when
        the route needs admission first (`ids`: what admission returned, then), or an
        `HttpResponse` when it is answered without invoking (an event over the limit)."""
        target, match = matched
        route = target.route
        if ids is None:
            if route.access is not None:
                return None
            ids = self.request_ids(target)
            request.headers.extend(_forwarded(request.headers, request.source_ip, port))
        fmt = FORMATS[route.payload]
        event = orjson.dumps(fmt.event(request, match, ids))
        if len(event) > MAX_BODY:  # base64 and headers can push a large body over the limit
            return _with_id(_api(route).too_large(), _ids_of(ids), route)
        return Prepared(target, _ids_of(ids), event)

    def invoke_soon(
        self,
        prepared: Prepared,
        respond: Callable[[HttpResponse], None],
        later: Callable[[], None] | None = None,
    ) -> Soon | None:
        """Start `prepared`'s invocation now, with no task or future, if an instance is
        idle and the server has room: `respond` gets the response from the instance's
        channel callback. Returns it (`cancel()` stops it: a shutdown), or None when it
        has to wait (then `await invoke(prepared)`). With `later`, a quick function's
        caller may wait for a busy instance with no task either; if that wait ends
        without one, `later()` is called (then `await invoke(prepared)`)."""

        def done(result: InvocationResult) -> None:
            try:
                response = self.answer(prepared, result)
            except Exception:
                logger.exception("answering %s failed", prepared.target.function)
                route = prepared.target.route
                response = _with_id(_api(route).function_error(), prepared.ids, route)
            respond(response)

        return self.invoker.invoke_soon(
            prepared.target.function, prepared.event, done, later, trigger="api"
        )

    async def invoke(self, prepared: Prepared) -> HttpResponse:
        """Invoke `prepared`'s function, waiting for an instance or a slot if need be."""
        target = prepared.target
        try:
            result = await self.invoker.invoke(target.function, prepared.event, trigger="api")
        except Throttled:
            return _with_id(TOO_MANY_REQUESTS, prepared.ids, target.route)
        except SkyliftError as exc:  # the platform failed, not the function: say so, once
            logger.error("invoking %s failed: %s", target.function, exc)
            return _with_id(_api(target.route).function_error(), prepared.ids, target.route)
        return self.answer(prepared, result)

    def answer(self, prepared: Prepared, result: InvocationResult) -> HttpResponse:
        """The proxy response for an invocation's result, with API Gateway's request id
        headers (`_id_headers`)."""
        route = prepared.target.route
        if result.error is None:
            try:
                response = FORMATS[route.payload].response(orjson.loads(result.payload))
            except (MalformedResponse, orjson.JSONDecodeError):
                response = _api(route).function_error()  # API Gateway's error page
        else:
            response = _api(route).function_error()
        response.headers += _id_headers(prepared.ids, route)
        return response


class Prepared(NamedTuple):
    """A function route's invocation, ready to run: its target, API Gateway's request
    ids (`_ids_of`), and the event."""

    target: Target
    ids: tuple[str, str]
    event: bytes


def new_ids(route: HttpRoute) -> RequestIds:
    """API Gateway's ids for a request: a REST API's requestId is a UUID and its
    extendedRequestId its own shorter id; an HTTP API has one id, of the short shape."""
    if route.api == "http":
        return RequestIds(gateway_id(), int(time.time() * 1000), stage="$default")
    return RequestIds(new_request_id(), int(time.time() * 1000), extended_request_id=gateway_id())


def _ids_of(ids: RequestIds) -> tuple[str, str]:
    """(requestId, extendedRequestId): what the id headers say."""
    return ids.request_id, ids.extended_request_id or ids.request_id


def _api(route: HttpRoute) -> ApiGatewayFormat:
    """The kind of API decides error pages; the payload version only the event shape."""
    return FORMATS["1.0" if route.api == "rest" else "2.0"]


def too_large(target: Target) -> HttpResponse:
    """The 413 page of the kind of API `target`'s route belongs to, with request ids."""
    route = target.route
    return _with_id(_api(route).too_large(), _ids_of(new_ids(route)), route)


def not_found() -> HttpResponse:
    return V2.not_found()


def _with_id(response: HttpResponse, request_id: tuple[str, str], route: HttpRoute) -> HttpResponse:
    return HttpResponse(
        response.status, [*response.headers, *_id_headers(request_id, route)], response.body
    )


def _id_headers(request_id: tuple[str, str], route: HttpRoute) -> tuple[tuple[str, str], ...]:
    """The request id headers API Gateway answers with: an HTTP API's `apigw-requestid`;
    a REST API's `x-amzn-RequestId` (its requestId) and `x-amz-apigw-id` (its extended
    request id, which the event's `extendedRequestId` holds)."""
    if route.api == "rest":
        return (("x-amzn-RequestId", request_id[0]), ("x-amz-apigw-id", request_id[1]))
    return (("apigw-requestid", request_id[0]),)


def scope_service(scope: Scope) -> str:
    """`routing.aws_service` for an ASGI scope; a control path is normalised in the scope,
    so `//_skylift/x` or `/%5fskylift/x` reach the control API, behind its guard."""
    path: str = scope["path"]
    control = control_path(path)
    if control is not None:
        scope["path"] = path = control
    return aws_service(path, scope["headers"], scope.get("query_string", b""))


def _bearer(guard: Guard | None, scope: Scope) -> bool:
    if guard is None:
        return False
    found = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    return guard.bearer(found)


def _forwarded(headers: list[tuple[str, str]], source_ip: str, port: int) -> list[tuple[str, str]]:
    """The X-Forwarded-* headers API Gateway adds, where the client did not send them."""
    # Only names of 15 to 17 characters can be one of them: the rest need no lower().
    present = {k.lower() for k, _ in headers if 15 <= len(k) <= 17}
    if not present:
        return [
            ("X-Forwarded-For", source_ip),
            ("X-Forwarded-Port", str(port)),
            ("X-Forwarded-Proto", "http"),
        ]
    added = []
    for name, value in (
        ("X-Forwarded-For", source_ip),
        ("X-Forwarded-Port", str(port)),
        ("X-Forwarded-Proto", "http"),
    ):
        if name.lower() not in present:
            added.append((name, value))
    return added


def _decode_headers(
    raw: list[tuple[bytes, bytes]], names: list[bytes] | None
) -> list[tuple[str, str]]:
    if names is not None and len(names) == len(raw):
        raw = [(name, value) for name, (_, value) in zip(names, raw, strict=True)]
    # Clients send UTF-8 in header values more often than the latin-1 RFCs allow.
    try:
        return [(k.decode(), v.decode()) for k, v in raw]
    except UnicodeDecodeError:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]


class _Disconnected:
    """The client disconnected before its whole body arrived."""


DISCONNECTED = _Disconnected()


async def _read_body(scope: Scope, receive: Receive) -> bytes | _Disconnected | None:
    """The whole body, None when it exceeds MAX_BODY (checked before buffering it), or
    DISCONNECTED when the client left before its end (a truncated body is never run)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            return None
    message = await receive()
    if message["type"] == "http.disconnect":
        return DISCONNECTED
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            return DISCONNECTED
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    message = await receive()
    while message.get("more_body"):
        message = await receive()


async def _respond(send: Send, response: HttpResponse) -> None:
    # The gateway frames the body itself; a handler's own framing headers would clash.
    headers = [(k.encode(), v.encode()) for k, v in response.headers if k.lower() not in _FRAMING]
    body = response.body
    if response.status in _NO_BODY or response.status < 200:
        body = b""  # HTTP forbids a body here; a length would desync keep-alive clients
    else:
        # API Gateway always answers with a length, never chunked.
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
