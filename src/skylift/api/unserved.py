"""The answer to an AWS call for a service skylift does not serve: a refusal, at once.

Every instance's `AWS_ENDPOINT_URL` points here (`/_skylift/unserved` on the server's
port), so `boto3.client("dynamodb").put_item(...)` in a handler gets an error naming the
service instead of reaching real AWS. The answer is 501 `NotImplemented` (which SDKs do
not retry), shaped for the protocol the request speaks so the SDK shows the message.
"""

from __future__ import annotations

import logging
import re
import uuid
from xml.sax.saxutils import escape

import orjson

from skylift.asgi_types import Receive, Scope, Send, lifespan

logger = logging.getLogger("skylift.unserved")
SERVED = "SQS, S3 and Lambda"
_SCOPE = re.compile(rb"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(
    rb"X-Amz-Credential=[^&/]+(?:/|%2F)\d{8}(?:/|%2F)[^&/%]+(?:/|%2F)([^&/%]+)"
)
# Services whose REST protocol answers in XML (most REST services answer in JSON).
_REST_XML = frozenset({"s3", "s3-outposts", "s3control", "route53", "cloudfront"})


class Unserved:
    """Refuses every request, naming the AWS service it was for.

    `reason` says why in the message; the default fits a running server.
    """

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        self._logged: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        message = await receive()
        while message.get("more_body"):
            message = await receive()
        headers = dict(scope["headers"])
        service = service_of(headers, scope.get("query_string", b""))
        text = self.message(service)
        if service not in self._logged:
            self._logged.add(service)
            logger.warning("a function called %s, which skylift does not serve: refused", service)
        content_type, body = error_body(headers, service, text)
        await send(
            {
                "type": "http.response.start",
                "status": 501,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-amzn-errortype", b"NotImplemented"),
                    (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def message(self, service: str) -> str:
        if self.reason is not None:
            return f"skylift did not send this {service} call to AWS: {self.reason}"
        return (
            f"skylift does not serve {service}; the call was stopped here so that it never "
            f"reaches real AWS. skylift serves {SERVED}. To use another local emulator, set "
            f"AWS_ENDPOINT_URL_<SERVICE> in the function's environment."
        )


def service_of(headers: dict[bytes, bytes], query: bytes) -> str:
    """The service a request is for: its SigV4 scope, else its X-Amz-Target's prefix."""
    found = _SCOPE.search(headers.get(b"authorization", b"")) or _QUERY_SCOPE.search(query)
    if found:
        return found.group(1).decode("latin-1")
    target = headers.get(b"x-amz-target")
    if target:
        return target.split(b".")[0].split(b"_")[0].decode("latin-1").lower()
    return "this AWS service"


def error_body(headers: dict[bytes, bytes], service: str, text: str) -> tuple[bytes, bytes]:
    """(content type, body) of a NotImplemented error in the request's protocol."""
    content_type = headers.get(b"content-type", b"")
    request_id = str(uuid.uuid4())
    if b"x-amz-target" in headers or content_type.startswith(b"application/x-amz-json"):
        return b"application/x-amz-json-1.0", orjson.dumps(
            {"__type": "NotImplemented", "message": text}
        )
    if content_type.startswith(b"application/x-www-form-urlencoded") or service in _REST_XML:
        if service == "ec2":  # EC2's query dialect has its own envelope
            xml = (
                f"<Response><Errors><Error><Code>NotImplemented</Code>"
                f"<Message>{escape(text)}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>"
            )
        else:
            xml = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>NotImplemented</Code>"
                f"<Message>{escape(text)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            )
        return b"text/xml", xml.encode()
    return b"application/json", orjson.dumps({"message": text})
