"""What every Lambda REST operation skylift serves shares: Lambda's errors, the forms of
a FunctionName, reading a request body and writing an answer.

Errors are Lambda's (rest-json): the status, an ``x-amzn-ErrorType: <Code>`` header, from
which botocore takes the error code and so the ``client.exceptions`` class, and a JSON body
whose members botocore adds to the exception's response. Each body uses the member names
of its shape in Lambda's model: ResourceNotFoundException has ``Message``, most others
``message``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from skylift.asgi_types import Receive, Scope, Send, lifespan
from skylift.errors import SkyliftError, is_disk_full

logger = logging.getLogger("skylift.api.lambda")
Headers = list[tuple[bytes, bytes]]
MAX_PAYLOAD = 6 * 1024 * 1024  # 6291456: Lambda's synchronous request limit

# The API versions in Lambda's request paths (botocore's model: one per generation of
# operations). Every path under one belongs to the Lambda API, served or not, so a client
# of an operation skylift lacks gets Lambda's error, never the app's 404 page.
API_VERSIONS = (
    "2014-11-13",
    "2015-03-31",
    "2016-08-19",
    "2017-03-31",
    "2017-10-31",
    "2018-10-31",
    "2019-09-25",
    "2019-09-30",
    "2020-04-22",
    "2020-06-30",
    "2021-07-20",
    "2021-10-31",
    "2021-11-15",
    "2024-08-31",
    "2025-11-30",
    "2025-12-01",
    "2026-07-09",
)
LAMBDA_PREFIXES = tuple(f"/{version}/" for version in API_VERSIONS)


class LambdaError(SkyliftError):
    """Raised inside LambdaApi for a request Lambda refuses; answered as Lambda answers it:
    ``status``, ``x-amzn-ErrorType: code`` and ``body`` as JSON."""

    def __init__(self, status: int, code: str, body: dict[str, str]) -> None:
        self.status = status
        self.code = code
        self.body = body
        super().__init__(f"{code}: {body}")


def user_error(status: int, code: str, message: str, **fields: str) -> LambdaError:
    return LambdaError(status, code, {"Type": "User", "message": message, **fields})


def invalid_parameter(message: str) -> LambdaError:
    return user_error(400, "InvalidParameterValueException", message)


def invalid_content(message: str) -> LambdaError:
    return user_error(400, "InvalidRequestContentException", message)


def not_found(message: str) -> LambdaError:
    return LambdaError(404, "ResourceNotFoundException", {"Type": "User", "Message": message})


def function_not_found(arn: str, functions: Iterable[str]) -> LambdaError:
    """Lambda's answer for a function (or version) that does not exist; what the app does
    declare goes to skylift's log."""
    logger.warning(
        "%s: no such function or version; this app declares %s, each as $LATEST only (no "
        "published versions or aliases)",
        arn,
        ", ".join(sorted(functions)) or "none",
    )
    return not_found(f"Function not found: {arn}")


def unknown_operation(scope: Scope) -> LambdaError:
    """What Lambda answers a request for an operation it does not have; what skylift
    serves goes to its log (docs/lambda-api.md lists it)."""
    logger.warning(
        "Lambda API: skylift does not serve %s %s; docs/lambda-api.md lists the operations "
        "it serves",
        scope["method"],
        scope["path"],
    )
    return user_error(
        404, "UnknownOperationException", f"Unknown operation {scope['method']} {scope['path']}"
    )


def validation_error(value: str, member: str, constraint: str) -> LambdaError:
    """Lambda's request validation (Coral's) words a violated constraint of its model so;
    `value` is quoted as it should appear ("'0'", "null", or "" for a sensitive one)."""
    shown = f"Value {value} at" if value else "Value at"
    return user_error(
        400,
        "ValidationException",
        f"1 validation error detected: {shown} '{member}' failed to satisfy constraint: "
        f"{constraint}",
    )


def segments(scope: Scope) -> list[str]:
    """The path's segments, from the raw path, since a percent-encoded "/" in a name must
    not split it: ``["", "2015-03-31", "functions", "echo"]``; each is percent-decoded."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    parts = raw.split(b"?", 1)[0].decode("latin-1").split("/")
    return [unquote(part) for part in parts]


def query(scope: Scope) -> dict[str, str]:
    """The query string's parameters, the first value of each."""
    pairs = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return {key: values[0] for key, values in pairs.items()}


MAX_LIST_ITEMS = 10000  # MaxItems' bound in Lambda's model (MaxListItems)


def max_items(raw: str | None, page: int) -> int:
    """How many items a list operation answers with: MaxItems, at most `page`."""
    if raw is None:
        return page
    try:
        count = int(raw)
    except ValueError:
        raise invalid_parameter(f"MaxItems must be a whole number, got '{raw}'") from None
    if not 1 <= count <= MAX_LIST_ITEMS:
        bound = (
            "greater than or equal to 1" if count < 1 else f"less than or equal to {MAX_LIST_ITEMS}"
        )
        raise validation_error(f"'{count}'", "maxItems", f"Member must have value {bound}")
    return min(count, page)


def write_marker(key: str) -> str:
    """An opaque Marker naming where the next page starts."""
    return base64.urlsafe_b64encode(key.encode()).decode()


def read_marker(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_parameter(f"Invalid pagination token: {marker}") from None


def json_body(body: bytes | None) -> dict[str, Any]:
    """A request's JSON object (an empty body is an empty object)."""
    if body is None:
        raise invalid_content("The request body is too large.")
    try:
        request = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise invalid_content(f"Could not parse request body into json: {exc}") from None
    if not isinstance(request, dict):
        raise invalid_content("Could not parse request body into json: not an object")
    return request


@dataclass(frozen=True)
class FunctionRef:
    """A FunctionName as the caller wrote it: a name, a partial or a full ARN."""

    name: str
    qualifier: str | None = None
    region: str | None = None
    account: str | None = None

    @classmethod
    def parse(cls, raw: str) -> FunctionRef:
        """``fn``, ``fn:q``, ``123456789012:function:fn[:q]`` or
        ``arn:aws:lambda:us-east-1:123456789012:function:fn[:q]``."""
        parts = raw.split(":")
        if parts[0] == "arn" and len(parts) in (7, 8) and parts[2:6:3] == ["lambda", "function"]:
            return cls(parts[6], _qualifier(parts, 7), parts[3], parts[4])
        if len(parts) in (3, 4) and parts[1] == "function":
            return cls(parts[2], _qualifier(parts, 3), None, parts[0])
        if len(parts) == 2:
            return cls(parts[0], parts[1] or None)
        return cls(raw)  # not a name Lambda would accept: it is reported as not found

    def check_home(self, arn: str, region: str, account_id: str) -> None:
        """Refuse, as Lambda does, an ARN from another region or account (`arn` names it
        in the error)."""
        if self.region and self.region != region:
            logger.warning(
                "%s: skylift's functions are in %s: name the function, or use an ARN in %s",
                arn,
                region,
                region,
            )
            raise not_found(
                f"Functions from '{self.region}' are not reachable in this region ('{region}')"
            )
        if self.account and self.account != account_id:
            logger.warning(
                "%s: skylift's functions are in account %s: name the function, or use its "
                "ARN in that account",
                arn,
                account_id,
            )
            raise not_found(f"Function not found: {arn}")


def _qualifier(parts: list[str], index: int) -> str | None:
    return parts[index] or None if len(parts) > index else None


async def read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole body, or None when it is over MAX_PAYLOAD (not read past the limit: the
    server, not this app, deals with the rest of an oversized body)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_PAYLOAD:
            return None
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_PAYLOAD:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    error_code: str | None = None,
    *,
    extra: Sequence[tuple[bytes, bytes]] = (),
    content_type: bytes = b"application/json",
) -> None:
    headers: Headers = [(b"x-amzn-requestid", request_id.encode())]
    if status != 204:  # HTTP forbids a body, and so a length, on a 204
        headers.append((b"content-type", content_type))
        headers.append((b"content-length", str(len(body)).encode()))
    if error_code is not None:
        headers.append((b"x-amzn-errortype", error_code.encode()))
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


Operation = Callable[[Scope, "bytes | None", str, Send], Awaitable[None]]


async def serve_operation(scope: Scope, receive: Receive, send: Send, operation: Operation) -> None:
    """What every Lambda operation shares: lifespan, a request id, the body (None past
    the payload limit), and errors answered as Lambda answers them; a bug is a 500
    ServiceException pointing at the server log, never a dropped connection."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    request_id = str(uuid.uuid4())
    body = await read_body(scope, receive)
    try:
        await operation(scope, body, request_id, send)
    except LambdaError as error:
        await respond(send, error.status, orjson.dumps(error.body), request_id, error.code)
    except Exception as exc:
        if is_disk_full(exc):  # a service-side failure that clears once space is freed
            logger.error("Lambda API request %s: %s; free some disk space", request_id, exc)
            message = "The Lambda service could not store the request: its disk is full."
        else:
            logger.exception("Lambda API request %s (%s) failed", request_id, scope["path"])
            message = (
                f"skylift's Lambda API failed on this request (id {request_id}); this is a "
                "bug, see the server log."
            )
        answer = orjson.dumps({"Type": "Service", "Message": message})
        await respond(send, 500, answer, request_id, "ServiceException")
