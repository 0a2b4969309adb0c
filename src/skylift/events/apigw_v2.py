"""API Gateway HTTP API, Lambda proxy integration (payload format 2.0).

Follows "Working with AWS Lambda proxy integrations for HTTP APIs". Request bodies are
text or base64 by the rule in `skylift.events._common`. In the event, header names are
lower-cased and repeats joined with ","; Cookie headers become ``cookies`` instead;
repeated query parameters are joined with ","; empty fields are left out.

On the way back, a result that is not an object with a ``statusCode`` is the body
itself: 200, ``application/json``, the result's JSON text (``null`` for None, quoted for
a string), as API Gateway passes the function's payload through. A structured result
may carry ``headers``, ``cookies`` (one Set-Cookie each), ``body`` and
``isBase64Encoded``; other keys are ignored, as HTTP APIs do, and with no Content-Type
API Gateway sends ``text/plain; charset=utf-8``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from skylift.events import _common
from skylift.events.http import (
    HttpRequest,
    HttpResponse,
    MalformedResponse,
    RequestIds,
    RouteMatch,
)

DEFAULT_STAGE = "$default"
DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"
_INTERNAL_ERROR = b'{"message":"Internal Server Error"}'


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        # orjson refuses integers beyond 64 bits, which json.loads happily produces.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class HttpApiV2:
    """Payload format 2.0 as an HTTP API Lambda integration delivers and interprets it."""

    version: str = "2.0"

    def event(self, request: HttpRequest, match: RouteMatch, ids: RequestIds) -> dict[str, Any]:
        """The Lambda event for `request` (see "Payload format version", 2.0)."""
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in request.headers:
            lower = name.lower()
            if lower == "cookie":
                for cookie in value.split(";"):
                    cookie = cookie.strip()
                    if cookie:
                        cookies.append(cookie)
                continue
            previous = headers.get(lower)
            headers[lower] = value if previous is None else f"{previous},{value}"
        content_type = headers.get("content-type")
        raw_path = request.raw_path
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": match.route_key,
            "rawPath": raw_path,
            "rawQueryString": request.raw_query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        query = _common.parse_query(request.raw_query)
        if query:
            event["queryStringParameters"] = {
                name: ",".join(values) for name, values in query.items()
            }
        event["requestContext"] = {
            "accountId": ids.account_id,
            "apiId": ids.api_id,
            "domainName": request.host,
            "domainPrefix": _common.domain_prefix(request.host),
            "http": {
                "method": request.method,
                "path": unquote(raw_path) if "%" in raw_path else raw_path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": ids.request_id,
            "routeKey": match.route_key,
            "stage": DEFAULT_STAGE if ids.stage is None else ids.stage,
            "time": _common.clf_time(ids.time_epoch_ms),
            "timeEpoch": ids.time_epoch_ms,
        }
        if ids.authorizer is not None:
            event["requestContext"]["authorizer"] = ids.authorizer
        body, is_base64 = _common.encode_body(request.body, content_type)
        if body is not None:
            event["body"] = body
        if match.path_parameters:
            event["pathParameters"] = match.path_parameters
        event["isBase64Encoded"] = is_base64
        return event

    def response(self, result: Any) -> HttpResponse:
        """The HTTP response for a handler's result (see "Lambda function response format")."""
        if not isinstance(result, dict) or "statusCode" not in result:
            return _common.json_response(200, _dumps(result))
        status = _common.status_code(result["statusCode"])

        out: list[tuple[str, str]] = []
        headers = _common.optional_dict(result, "headers")
        if headers:
            for name, value in headers.items():
                out.append((name, _common.header_value(name, value)))
        cookies = result.get("cookies")
        if cookies is not None:
            if not isinstance(cookies, list):
                raise MalformedResponse(f"cookies must be a list, not {type(cookies).__name__}")
            for cookie in cookies:
                if not isinstance(cookie, str):
                    raise MalformedResponse(
                        f"cookies must hold strings, not {type(cookie).__name__}"
                    )
                out.append(("Set-Cookie", _common.header_value("Set-Cookie", cookie)))
        if not _common.has_header(out, "content-type"):
            out.append(("Content-Type", DEFAULT_CONTENT_TYPE))

        body = _common.response_body(result, _common.optional_bool(result, "isBase64Encoded"))
        return HttpResponse(status, out, body)

    def function_error(self) -> HttpResponse:
        """What an HTTP API sends when the function fails: 500 "Internal Server Error"."""
        return _common.json_response(500, _INTERNAL_ERROR)

    def not_found(self) -> HttpResponse:
        """404 {"message":"Not Found"}, as an HTTP API answers an unmatched route."""
        return _common.not_found()

    def too_large(self) -> HttpResponse:
        """413 for a request body over the payload limit."""
        return _common.too_large()


if TYPE_CHECKING:
    from skylift.events.http import ApiGatewayFormat

    _conforms: ApiGatewayFormat = HttpApiV2()
