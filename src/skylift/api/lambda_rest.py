"""What every Lambda REST operation skylift serves shares: Lambda's errors, the forms of
a FunctionName, reading a request body and writing an answer.

Errors are Lambda's (rest-json): the status, an ``x-amzn-ErrorType: <Code>`` header, from
which botocore takes the error code and so the ``client.exceptions`` class, and a JSON body
whose members botocore adds to the exception's response. Each body uses the member names
of its shape in Lambda's model: ResourceNotFoundException has ``Message``, most others
``message``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson

from skylift.asgi_types import Receive, Scope, Send, lifespan
from skylift.errors import SkyliftError, is_disk_full

logger = logging.getLogger("skylift.api.lambda")
Headers = list[tuple[bytes, bytes]]
MAX_PAYLOAD = 6 * 1024 * 1024  # 6291456: Lambda's synchronous request limit


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
            raise not_found(
                f"Functions from '{self.region}' are not reachable in this region "
                f"('{region}'): name the function, or use an ARN in {region}."
            )
        if self.account and self.account != account_id:
            raise not_found(
                f"Function not found: {arn}. skylift's functions are in account "
                f"{account_id}: name the function, or use its ARN in that account."
            )


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
) -> None:
    headers: Headers = [(b"x-amzn-requestid", request_id.encode())]
    if status != 204:  # HTTP forbids a body, and so a length, on a 204
        headers.append((b"content-type", b"application/json"))
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
