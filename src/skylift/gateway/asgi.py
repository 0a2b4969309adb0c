"""The HTTP gateway as a plain ASGI callable: request -> API Gateway event -> invoke ->
proxy response. It is the hot path, so it avoids frameworks and needless copies."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import orjson

from skylift.api.lambda_rest import LAMBDA_PREFIXES
from skylift.asgi_types import Asgi, Receive, Scope, Send, lifespan
from skylift.engine.invoker import Invoker
from skylift.errors import SkyliftError, Throttled
from skylift.events.apigw_v1 import RestApiV1
from skylift.events.apigw_v2 import HttpApiV2
from skylift.events.http import (
    ApiGatewayFormat,
    HttpRequest,
    HttpResponse,
    MalformedResponse,
    RequestIds,
)
from skylift.gateway.guard import Guard, refused
from skylift.gateway.protocol import HEADER_NAMES
from skylift.gateway.signatures import verified
from skylift.ids import request_id as new_request_id
from skylift.openapi_served import TemplateDocs
from skylift.runtime.environ import UNSERVED_PATH
from skylift.sources.http import Router
from skylift.spec import CONTROL_PREFIX

logger = logging.getLogger("skylift.gateway")
METRICS_PATH = CONTROL_PREFIX + "metrics"
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

    AWS SDK requests are told from the app's own by what the SDKs always send: SQS's
    `X-Amz-Target: AmazonSQS.*`, and S3's `x-amz-content-sha256` header or a SigV4
    credential scoped to `s3` (also in presigned URLs, and SigV2 presigned URLs by their
    `AWSAccessKeyId`), or a `BUCKET.s3.localhost` Host. Everything else is the app's.
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        if self.services:
            name = aws_service(scope)
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
        target, match = matched
        route = target.route
        scope["skylift.route"] = route.path  # for HTTP metrics
        fmt = FORMATS[route.payload]
        # The kind of API decides error pages; the payload version only the event shape.
        api = FORMATS["1.0" if route.api == "rest" else "2.0"]
        body = await _read_body(scope, receive)
        if body is None:
            await _respond(send, api.too_large())
            return
        client = scope.get("client")
        server = scope.get("server")
        source_ip = client[0] if client else "127.0.0.1"
        headers = _decode_headers(scope["headers"], scope.get(HEADER_NAMES))
        host = next((v for k, v in headers if k.lower() == "host"), None)
        headers.extend(_forwarded(headers, source_ip, server[1] if server else 80))
        raw_path = scope.get("raw_path")
        request = HttpRequest(
            method=method,
            raw_path=raw_path.decode("latin-1") if raw_path else scope["path"],
            raw_query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=body,
            source_ip=source_ip,
            protocol="HTTP/" + scope["http_version"],
            host=host or (f"{server[0]}:{server[1]}" if server else "localhost"),
        )
        ids = RequestIds(
            request_id=new_request_id(),
            time_epoch_ms=int(time.time() * 1000),
            stage="$default" if route.api == "http" else None,
        )
        event = orjson.dumps(fmt.event(request, match, ids))
        if len(event) > MAX_BODY:  # base64 and headers can push a large body over the limit
            await _respond(send, api.too_large())
            return
        try:
            result = await self.invoker.invoke(target.function, event)
        except Throttled:
            await _respond(send, TOO_MANY_REQUESTS, ids.request_id)
            return
        except SkyliftError as exc:  # the platform failed, not the function: say so, once
            logger.error("invoking %s failed: %s", target.function, exc)
            await _respond(send, api.function_error(), ids.request_id)
            return
        response = api.function_error()
        if result.error is None:
            try:
                response = fmt.response(orjson.loads(result.payload))
            except (MalformedResponse, orjson.JSONDecodeError):
                pass  # API Gateway answers a malformed proxy response with its error page
        await _respond(send, response, ids.request_id)


def aws_service(scope: Scope) -> str:
    """The AWS service ("sqs", "s3", "lambda") an SDK request is for, or "" for the app's.

    Lambda's API (Invoke, the concurrency operations, account settings) is told by its
    paths, which no API Gateway route can shadow, and skylift's control API ("control") by
    its prefix, which no route may use; its metrics ("metrics") at `/_skylift/metrics`,
    and `/metrics` ("metrics_root") when the app leaves that path free. Any other path
    under one of Lambda's API versions is Lambda's too, unless it is signed for S3 (a
    bucket may be named "2024-08-31").
    """
    path: str = scope["path"]
    # A tuple of constants is one constant to the compiler: no cost per request.
    if path.startswith(
        (
            "/2015-03-31/functions/",
            "/2017-10-31/functions/",
            "/2019-09-30/functions/",
            "/2016-08-19/account-settings",
        )
    ):
        return "lambda"
    if path.startswith(CONTROL_PREFIX):
        if path == METRICS_PATH:
            return "metrics"
        # Where instances' AWS calls for services skylift does not serve end (refused).
        return "unserved" if path.startswith(UNSERVED_PATH) else "control"
    s3 = False
    for name, value in scope["headers"]:
        if name == b"x-amz-target":
            return "sqs" if value.startswith(b"AmazonSQS.") else ""
        if name == b"authorization":
            if b"/s3/aws4_request" in value:
                return "s3"
            if b"/sqs/aws4_request" in value:
                return "sqs"
        elif name == b"x-amz-content-sha256":
            s3 = True
        elif name == b"host" and b".s3.localhost" in value:
            s3 = True  # virtual-hosted S3 (BUCKET.s3.localhost), even from a plain client
    query: bytes = scope.get("query_string", b"")
    # Presigned URLs: SigV4 names its scope; SigV2 (boto3's default for S3) its key id.
    if s3 or b"%2Fs3%2Faws4_request" in query or b"AWSAccessKeyId=" in query:
        return "s3"
    if b"%2Fsqs%2Faws4_request" in scope.get("query_string", b""):
        return "sqs"  # a presigned SQS query-protocol URL (X-Amz-Credential=.../sqs/...)
    if path.startswith(LAMBDA_PREFIXES):
        return "lambda"
    # Prometheus' default path: skylift's metrics, unless the app has a route there (the
    # server registers "metrics_root" only then), so a route can always have it.
    return "metrics_root" if path == "/metrics" else ""


def _bearer(guard: Guard | None, scope: Scope) -> bool:
    if guard is None:
        return False
    found = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    return guard.bearer(found)


def _forwarded(headers: list[tuple[str, str]], source_ip: str, port: int) -> list[tuple[str, str]]:
    """The X-Forwarded-* headers API Gateway adds, where the client did not send them."""
    present = {k.lower() for k, _ in headers}
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


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole body, or None when it exceeds MAX_BODY (checked before buffering it)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            return None
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
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


async def _respond(send: Send, response: HttpResponse, request_id: str | None = None) -> None:
    # The gateway frames the body itself; a handler's own framing headers would clash.
    headers = [(k.encode(), v.encode()) for k, v in response.headers if k.lower() not in _FRAMING]
    body = response.body
    if response.status in _NO_BODY or response.status < 200:
        body = b""  # HTTP forbids a body here; a length would desync keep-alive clients
    else:
        # API Gateway always answers with a length, never chunked.
        headers.append((b"content-length", str(len(body)).encode()))
    if request_id is not None:
        headers.append((b"apigw-requestid", request_id.encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
