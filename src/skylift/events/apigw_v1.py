"""API Gateway REST API, Lambda proxy integration (payload format 1.0).

Follows "Set up Lambda proxy integrations in API Gateway" (input and output format of a
Lambda function for proxy integration). Request bodies are text or base64 by the rule in
`skylift.events._common`. On the way back:

* the result must be an object with an integer ``statusCode`` and only the keys
  ``headers``, ``multiValueHeaders``, ``body`` (a string) and ``isBase64Encoded``; REST
  APIs answer 502 for any other key or type, so anything else is `MalformedResponse`;
* ``headers`` and ``multiValueHeaders`` are merged; a pair present in both is sent once;
* with no Content-Type, API Gateway sends ``application/json``.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from skylift.events import _common
from skylift.events.http import (
    HttpRequest,
    HttpResponse,
    MalformedResponse,
    RequestIds,
    RouteMatch,
)

DEFAULT_STAGE = "Prod"  # what SAM deploys REST APIs to, and what `sam local` reports

# "base64Encoded" is undocumented, but REST APIs honour it before isBase64Encoded
# (observed by the SAM CLI team: aws-sam-cli, local_apigw_service.get_base_64_encoded).
_RESPONSE_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "base64Encoded"}
)
_INTERNAL_ERROR = b'{"message": "Internal server error"}'
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@lru_cache(maxsize=256)
def _resource_id(resource: str) -> str:
    """A stable 6-character id per resource, shaped like API Gateway's (e.g. "roq9wj")."""
    n = zlib.crc32(resource.encode())
    chars = []
    for _ in range(6):
        n, digit = divmod(n, 36)
        chars.append(_BASE36[digit])
    return "".join(chars)


class RestApiV1:
    """Payload format 1.0 as a REST API proxy integration delivers and interprets it."""

    version: str = "1.0"

    def event(self, request: HttpRequest, match: RouteMatch, ids: RequestIds) -> dict[str, Any]:
        """The Lambda event for `request` (see "Input format of a Lambda function")."""
        headers: dict[str, str] | None = None
        multi_headers: dict[str, list[str]] | None = None
        if request.headers:
            # REST APIs key headers by name exactly as sent: "Foo" and "foo" stay apart.
            headers = {}
            multi_headers = {}
            for name, value in request.headers:
                headers[name] = value
                values = multi_headers.get(name)
                if values is None:
                    multi_headers[name] = [value]
                else:
                    values.append(value)
        content_type, user_agent = _common.sniff_headers(request.headers)

        query: dict[str, str] | None = None
        multi_query = _common.parse_query(request.raw_query) or None
        if multi_query is not None:
            query = {name: values[-1] for name, values in multi_query.items()}

        body, is_base64 = _common.encode_body(request.body, content_type)
        path = unquote(request.raw_path) if "%" in request.raw_path else request.raw_path
        stage = DEFAULT_STAGE if ids.stage is None else ids.stage
        event: dict[str, Any] = {
            "resource": match.resource,
            "path": path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": match.path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": ids.account_id,
                "apiId": ids.api_id,
                "domainName": request.host,
                "domainPrefix": _common.domain_prefix(request.host),
                "extendedRequestId": ids.extended_request_id or ids.request_id,
                "httpMethod": request.method,
                "identity": {
                    "accessKey": None,
                    "accountId": None,
                    "apiKey": ids.api_key,
                    "apiKeyId": ids.api_key_id,
                    "caller": None,
                    "cognitoAuthenticationProvider": None,
                    "cognitoAuthenticationType": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "principalOrgId": None,
                    "sourceIp": request.source_ip,
                    "user": None,
                    "userAgent": user_agent,
                    "userArn": None,
                },
                "path": f"/{stage}{path}",
                "protocol": request.protocol,
                "requestId": ids.request_id,
                "requestTime": _common.clf_time(ids.time_epoch_ms),
                "requestTimeEpoch": ids.time_epoch_ms,
                "resourceId": _resource_id(match.resource),
                "resourcePath": match.resource,
                "stage": stage,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }
        if ids.authorizer is not None:
            event["requestContext"]["authorizer"] = ids.authorizer
        return event

    def response(self, result: Any) -> HttpResponse:
        """The HTTP response for a handler's result (see "Output format of a Lambda function")."""
        if not isinstance(result, dict):
            raise MalformedResponse(
                f"a REST API proxy response must be an object, not {type(result).__name__}"
            )
        unknown = result.keys() - _RESPONSE_KEYS
        if unknown:
            raise MalformedResponse(f"unexpected keys in proxy response: {sorted(unknown)}")
        status = _common.status_code(result.get("statusCode"))

        out: list[tuple[str, str]] = []
        multi = _common.optional_dict(result, "multiValueHeaders")
        if multi:
            for name, values in multi.items():
                if not isinstance(values, list):
                    raise MalformedResponse(
                        f"multiValueHeaders[{name!r}] must be a list, not {type(values).__name__}"
                    )
                for value in values:
                    out.append((name, _common.header_value(name, value)))
        single = _common.optional_dict(result, "headers")
        if single:
            from_multi = set(out) if multi else None
            for name, value in single.items():
                pair = (name, _common.header_value(name, value))
                # The docs: a pair given in both appears once, as multiValueHeaders has it.
                if from_multi is None or pair not in from_multi:
                    out.append(pair)
        if not _common.has_header(out, "content-type"):
            out.append(("Content-Type", "application/json"))

        key = "base64Encoded" if result.get("base64Encoded") is not None else "isBase64Encoded"
        body = _common.response_body(result, _common.optional_bool(result, key))
        return HttpResponse(status, out, body)

    def function_error(self) -> HttpResponse:
        """What a REST API sends when the function fails: 502 "Internal server error"."""
        return _common.json_response(502, _INTERNAL_ERROR)

    def not_found(self) -> HttpResponse:
        """404 {"message":"Not Found"} for a request no route matches."""
        return _common.not_found()

    def too_large(self) -> HttpResponse:
        """413 for a request body over the payload limit."""
        return _common.too_large()


if TYPE_CHECKING:
    from skylift.events.http import ApiGatewayFormat

    _conforms: ApiGatewayFormat = RestApiV1()
