"""Lambda function URLs: the event a URL delivers and how Lambda turns the result into a
response ("Invoking Lambda function URLs", request and response payloads).

The event is payload format 2.0, as an HTTP API's, with what a URL sets itself:
`routeKey` and `requestContext.routeKey` `$default`, `stage` `$default`, `domainName`
`{url-id}.lambda-url.{region}.on.aws`, `domainPrefix` and `apiId` the url-id, no
`pathParameters` or `stageVariables`. `requestContext.accountId` is "anonymous" for AuthType
NONE; for AWS_IAM it is the caller's account and `requestContext.authorizer.iam` names the
caller (accessKey, accountId, callerId, cognitoIdentity, principalOrgId, userArn, userId).

The result is read as HTTP APIs read it (`HttpApiV2.response`): anything but an object with
a `statusCode` is the body, with 200 and `application/json`. A structured result without a
Content-Type gets `application/json` too (an HTTP API would say `text/plain`). Lambda's own
refusals are JSON `{"Message": ...}`: 403 for a request AWS_IAM does not admit, 502 when the
function fails or answers something that is not a response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skylift.events._common import has_header, json_response
from skylift.events.apigw_v2 import HttpApiV2
from skylift.events.http import HttpRequest, HttpResponse, RequestIds, RouteMatch

DEFAULT = RouteMatch("$default", "$default", {})
ANONYMOUS = "anonymous"
_V2 = HttpApiV2()
FORBIDDEN = (
    "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
)


@dataclass(frozen=True)
class IamCaller:
    """Who signed an AWS_IAM function URL request (`requestContext.authorizer.iam`)."""

    access_key: str
    account_id: str
    caller_id: str
    user_arn: str
    user_id: str

    def to_event(self) -> dict[str, Any]:
        return {
            "accessKey": self.access_key,
            "accountId": self.account_id,
            "callerId": self.caller_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": self.user_arn,
            "userId": self.user_id,
        }


def domain_name(url_id: str, region: str) -> str:
    """The host a function URL has on AWS: `{url-id}.lambda-url.{region}.on.aws`."""
    return f"{url_id}.lambda-url.{region}.on.aws"


def url_event(
    request: HttpRequest,
    url_id: str,
    region: str,
    ids: RequestIds,
    caller: IamCaller | None = None,
) -> dict[str, Any]:
    """The event a function URL delivers for `request` (its `raw_path` without any prefix
    skylift serves the URL under)."""
    domain = domain_name(url_id, region)
    event = _V2.event(
        HttpRequest(
            method=request.method,
            raw_path=request.raw_path,
            raw_query=request.raw_query,
            headers=request.headers,
            body=request.body,
            source_ip=request.source_ip,
            protocol=request.protocol,
            host=domain,
        ),
        DEFAULT,
        RequestIds(ids.request_id, ids.time_epoch_ms, api_id=url_id, stage="$default"),
    )
    context = event["requestContext"]
    context["domainPrefix"] = url_id
    if caller is None:
        context["accountId"] = ANONYMOUS
    else:
        context["accountId"] = caller.account_id
        context["authorizer"] = {"iam": caller.to_event()}
    event.pop("pathParameters", None)  # a URL has no routes, so no path parameters
    return event


def url_response(result: Any) -> HttpResponse:
    """The HTTP response for a function's (JSON-decoded) result; MalformedResponse when a
    structured result is not a valid one."""
    response = _V2.response(result)
    if isinstance(result, dict) and "statusCode" in result:
        given = result.get("headers")
        if not (isinstance(given, dict) and has_header([(k, "") for k in given], "content-type")):
            response.headers = [
                (k, "application/json" if k == "Content-Type" else v) for k, v in response.headers
            ]
    return response


def _message(status: int, message: str) -> HttpResponse:
    body = b'{"Message":"' + message.encode() + b'"}'
    return json_response(status, body)


def function_error() -> HttpResponse:
    """502 {"Message":"Internal Server Error"}: the function failed or answered garbage."""
    return _message(502, "Internal Server Error")


def forbidden() -> HttpResponse:
    """403 for a request an AWS_IAM URL does not admit (unsigned, or signed wrong)."""
    return _message(403, FORBIDDEN)


def throttled() -> HttpResponse:
    """429 when the function has no instance free (its concurrency is used up)."""
    return _message(429, "Rate Exceeded.")


def too_large() -> HttpResponse:
    """413 for a request over Lambda's 6 MB synchronous payload limit."""
    return _message(413, "Request Entity Too Large")


def not_found() -> HttpResponse:
    """404 for a host or path that names no function URL."""
    return _message(404, "Not Found")
