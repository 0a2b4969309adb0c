"""Function URLs served on the gateway's port, as an ASGI app the gateway hands requests
for the "url" service (see `asgi.aws_service`):

- by Host, `{url-id}.lambda-url.localhost:PORT` (any `{url-id}.lambda-url.` host), the way
  AWS serves them, with the path as the function sees it;
- by path, `/_skylift/url/{function}/...` (the function's name or its url-id), for clients
  that cannot set a Host; the prefix is cut off, so `rawPath` is what follows it.

Lambda's rules in front of the function: AWS_IAM admits only a SigV4 request signed for
`lambda` (verified against `--credentials` when the server has them; any key otherwise, as
no IAM exists here), a configured `Cors` answers preflights and adds its headers, and the
result becomes the response as `events.lambda_url` describes.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from urllib.parse import quote, unquote

import orjson

from skylift.account import ACCOUNT_ID
from skylift.asgi_types import Receive, Scope, Send
from skylift.engine.invoker import Invoker
from skylift.errors import SkyliftError, Throttled
from skylift.events import lambda_url, lambda_url_cors
from skylift.events.http import HttpRequest, HttpResponse, MalformedResponse, RequestIds
from skylift.function_urls import url_id
from skylift.gateway.routing import normalised, url_host
from skylift.gateway.sigv4 import Verifier, body_hash
from skylift.ids import request_id as new_request_id
from skylift.spec import CONTROL_PREFIX, FunctionSpec

logger = logging.getLogger("skylift.gateway")
PATH_PREFIX = CONTROL_PREFIX + "url/"
MAX_BODY = 6 * 1024 * 1024  # Lambda's synchronous payload limit
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request")


class FunctionUrls:
    """Serves the function URLs of `specs` (the platform's live mapping: a reload or an
    UpdateFunctionConfiguration is seen at the next request).

    Example: ``FunctionUrls(platform.specs, platform.invoker, region="us-east-1")``, given
    to the gateway as its "url" service.
    """

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        invoker: Invoker,
        *,
        region: str,
        verifier: Verifier | None = None,
    ) -> None:
        self.specs = specs
        self.invoker = invoker
        self.region = region
        self.verifier = verifier
        self._ids: dict[str, str] = {}  # url-id -> function name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        found = self._target(scope)
        body = await _read_body(scope, receive)
        if body is DISCONNECTED:
            return  # the client left mid-upload: a truncated body never reaches the function
        if found is None:
            await _respond(send, lambda_url.not_found())
            return
        spec, raw_path = found
        url = spec.url
        assert url is not None  # _target finds only functions with a URL
        scope["skylift.route"] = "url:" + spec.name  # for HTTP metrics
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        method: str = scope["method"]
        if url.cors is not None and lambda_url_cors.is_preflight(method, headers):
            await _respond(send, lambda_url_cors.preflight(url.cors, headers))
            return
        if not isinstance(body, bytes):
            await _respond(send, lambda_url.too_large())
            return
        caller: lambda_url.IamCaller | None = None
        if url.auth_type == "AWS_IAM":
            caller = self._caller(scope, body)
            if caller is None:
                await _respond(send, lambda_url.forbidden())
                return
        client = scope.get("client")
        server = scope.get("server")
        source_ip = client[0] if client else "127.0.0.1"
        headers.extend(_forwarded(headers, source_ip, server[1] if server else 80))
        request = HttpRequest(
            method=method,
            raw_path=raw_path,
            raw_query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=body,
            source_ip=source_ip,
            protocol="HTTP/" + scope["http_version"],
        )
        ids = RequestIds(new_request_id(), int(time.time() * 1000))
        event = lambda_url.url_event(
            request, url_id(spec.name, self.region), self.region, ids, caller
        )
        response = await self._invoke(spec.name, orjson.dumps(event))
        if url.cors is not None:
            lambda_url_cors.apply(url.cors, headers, response)
        await _respond(send, response, ids.request_id)

    async def _invoke(self, function: str, event: bytes) -> HttpResponse:
        if len(event) > MAX_BODY:
            return lambda_url.too_large()
        try:
            result = await self.invoker.invoke(function, event, trigger="url")
        except Throttled:
            return lambda_url.throttled()
        except SkyliftError as exc:  # the platform failed, not the function: say so, once
            logger.error("invoking %s through its function URL failed: %s", function, exc)
            return lambda_url.function_error()
        if result.error is not None:
            return lambda_url.function_error()
        try:
            return lambda_url.url_response(orjson.loads(result.payload))
        except (MalformedResponse, orjson.JSONDecodeError) as exc:
            logger.warning("%s answered its function URL with no valid response: %s", function, exc)
            return lambda_url.function_error()

    def _target(self, scope: Scope) -> tuple[FunctionSpec, str] | None:
        """The function a request is for and the raw path it sees, or None. By path, it is
        found on the decoded, normalised path, as `routing` decides (`/%5fskylift/url/f/`
        and `//_skylift/url/f/` are `/_skylift/url/f/`)."""
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.split(b"?", 1)[0].decode("latin-1")
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        if url_host(host):
            return self._spec(host.split(b".", 1)[0].decode("latin-1").lower(), raw_path)
        path = normalised(scope["path"])
        if not path.startswith(PATH_PREFIX):
            return None
        name, _, rest = path[len(PATH_PREFIX) :].partition("/")
        return self._spec(name, _raw_rest(raw_path, name, rest))

    def _spec(self, key: str, raw_path: str) -> tuple[FunctionSpec, str] | None:
        spec = self.specs.get(key)
        if spec is None:
            name = self._ids.get(key)
            if name is None:  # a URL added since (a reload): look again
                self._ids = {url_id(n, self.region): n for n in self.specs}
                name = self._ids.get(key)
            spec = self.specs.get(name) if name is not None else None
        if spec is None or spec.url is None:
            return None
        return spec, raw_path

    def _caller(self, scope: Scope, body: bytes) -> lambda_url.IamCaller | None:
        """Who signed an AWS_IAM request, or None when it is not admitted (logged why)."""
        if self.verifier is not None:
            key_id, refusal = self.verifier.check("lambda", scope, body_hash(body))
            if refusal is not None:
                logger.warning(
                    "refused a function URL request (%s %s): %s; AWS_IAM URLs need a SigV4 "
                    "signature for the lambda service with a key of --credentials",
                    scope["method"],
                    scope["path"],
                    refusal.detail or refusal.kind,
                )
                return None
            assert key_id is not None
            return _iam(key_id)
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        text = authorization.decode("latin-1") or unquote(scope["query_string"].decode("latin-1"))
        found = _CREDENTIAL.search(text)
        if found is None or found.group(2) != "lambda":
            logger.warning(
                "refused a function URL request (%s %s) without a SigV4 signature for the "
                "lambda service: its AuthType is AWS_IAM (sign it, e.g. with botocore's "
                "SigV4Auth and service 'lambda', or use AuthType NONE)",
                scope["method"],
                scope["path"],
            )
            return None
        return _iam(found.group(1))


def _raw_rest(raw_path: str, name: str, rest: str) -> str:
    """The raw (undecoded) path after `/_skylift/url/{name}/`, the function's `rawPath`;
    `rest` is the decoded one, re-encoded where the raw path's segments do not line up."""
    parts = normalised(raw_path).split("/", 4)
    if len(parts) >= 4 and unquote("/".join(parts[:4])) == PATH_PREFIX + name:
        return "/" + (parts[4] if len(parts) > 4 else "")
    return "/" + quote(rest, safe="/!$&'()*+,;=:@~")


def _iam(key_id: str) -> lambda_url.IamCaller:
    user = "AIDA" + key_id[-16:].upper().rjust(16, "X")
    return lambda_url.IamCaller(
        access_key=key_id,
        account_id=ACCOUNT_ID,
        caller_id=user,
        user_arn=f"arn:aws:iam::{ACCOUNT_ID}:user/skylift",
        user_id=user,
    )


def _forwarded(headers: list[tuple[str, str]], source_ip: str, port: int) -> list[tuple[str, str]]:
    present = {k.lower() for k, _ in headers}
    wanted = (
        ("x-forwarded-for", source_ip),
        ("x-forwarded-port", str(port)),
        ("x-forwarded-proto", "http"),
    )
    return [(name, value) for name, value in wanted if name not in present]


class _Disconnected:
    """The client disconnected before its whole body arrived."""


DISCONNECTED = _Disconnected()


async def _read_body(scope: Scope, receive: Receive) -> bytes | _Disconnected | None:
    """The whole body, None past MAX_BODY (read to its end either way), or DISCONNECTED
    when the client left before its end."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return DISCONNECTED
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks) if size <= MAX_BODY else None


async def _respond(send: Send, response: HttpResponse, request_id: str | None = None) -> None:
    headers = [(k.encode(), v.encode()) for k, v in response.headers if k.lower() not in _FRAMING]
    body = response.body
    if response.status in (204, 304) or response.status < 200:
        body = b""
    else:
        headers.append((b"content-length", str(len(body)).encode()))
    if request_id is not None:
        headers.append((b"x-amzn-requestid", request_id.encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
