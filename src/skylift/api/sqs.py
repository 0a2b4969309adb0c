"""The SQS API as an ASGI app: SQS's JSON protocol, as current AWS SDKs and the CLI speak it.

A request is ``POST /`` with ``X-Amz-Target: AmazonSQS.<Action>`` and a JSON body; the
answer is JSON with an ``x-amzn-RequestId`` header. An error answers
``{"__type": "com.amazonaws.sqs#<Code>", "message": ...}`` plus the
``x-amzn-query-error: <legacy code>;Sender|Receiver`` header of SQS's awsQueryCompatible
trait, from which botocore takes the error code users see
(``AWS.SimpleQueueService.NonExistentQueue``) and the exception class
(``client.exceptions.QueueDoesNotExist``), as with real SQS.

The older query protocol (``Action=...`` form parameters, XML answers in SQS's namespace),
which older SDKs and tools still speak, is served by the same actions (``sqs_query.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import orjson

from skylift.account import ACCOUNT_ID
from skylift.api import sqs_query
from skylift.api.sqs_actions import Result, SqsActions
from skylift.api.sqs_params import Params
from skylift.asgi_types import Receive, Scope, Send, lifespan
from skylift.ids import request_id as new_request_id
from skylift.queues.errors import InvalidParameterValue, QueueError, UnsupportedOperation
from skylift.queues.protocol import QueueBackend

logger = logging.getLogger("skylift.api.sqs")

_TARGET_PREFIX = "AmazonSQS."
# A full batch holds 1 MiB of messages; JSON escaping makes that at most 3 MiB on the wire
# (an astral character, 4 bytes in UTF-8, is the 12-byte "\ud83d\ude00"), base64 4/3.
MAX_BODY = 4 * 1024 * 1024
# Actions in SQS's model that skylift answers with UnsupportedOperation, and why: accepting
# them silently would hide that they change nothing here.
UNSUPPORTED_ACTIONS = {
    "AddPermission": "skylift has no IAM: every client may use every queue",
    "RemovePermission": "skylift has no IAM: every client may use every queue",
}


class InvalidAction(QueueError):
    """Raised when a request names no SQS action, or one SQS does not have."""

    code = "InvalidAction"


class InternalError(QueueError):
    """Raised (as a 500) when the API itself fails: a bug, logged with its request id."""

    code = "InternalError"
    status = 500
    sender_fault = False


def is_sqs_request(scope: Scope) -> bool:
    """Whether an ASGI request is meant for the SQS API, by its headers alone.

    True for a POST whose ``X-Amz-Target`` starts with ``AmazonSQS.`` (the JSON protocol),
    or a form POST signed for the ``sqs`` service (the query protocol). Example:
    ``if is_sqs_request(scope): await sqs(scope, receive, send)``.
    """
    if scope.get("type") != "http" or scope.get("method") != "POST":
        return False
    target = content_type = authorization = b""
    for name, value in scope["headers"]:
        if name == b"x-amz-target":
            target = value
        elif name == b"content-type":
            content_type = value
        elif name == b"authorization":
            authorization = value
    if target.startswith(b"AmazonSQS."):
        return True
    return content_type.startswith(b"application/x-www-form-urlencoded") and (
        b"/sqs/aws4_request" in authorization
    )


class SqsApi:
    """An ASGI app serving SQS's API over a QueueBackend.

    Queue URLs are ``http://{Host header}/{account_id}/{name}``; a request's QueueUrl is
    resolved by its last path segment whatever host it names, so the ``https://sqs.{region}
    .amazonaws.com/...`` URLs of a SAM template's ``!Ref`` work too. ARNs come from the
    backend, so build it with the same ``region`` and ``account_id``.

    Example::

        api = SqsApi(SqliteQueues("var/queues.db"), region="us-east-1")
        uvicorn.run(api, port=9324)
        # boto3.client("sqs", endpoint_url="http://127.0.0.1:9324", ...)
    """

    def __init__(self, queues: QueueBackend, *, region: str, account_id: str = ACCOUNT_ID) -> None:
        self.queues = queues
        self.region = region
        self.account_id = account_id
        self._actions = SqsActions(queues, account_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = new_request_id()
        headers = dict(scope["headers"])  # ASGI lower-cases header names
        target = headers.get(b"x-amz-target", b"").decode("latin-1")
        query = not target and _is_query_protocol(scope, headers)
        action = target.removeprefix(_TARGET_PREFIX)
        try:
            if query:
                action, data = await _query_request(scope, receive)
                if not action:
                    raise InvalidAction(
                        "The action or operation requested is invalid. Verify that the action "
                        "is typed correctly.",
                        hint="a query-protocol request names its action in Action=...",
                    )
            elif scope["method"] != "POST" or not target.startswith(_TARGET_PREFIX) or not action:
                raise InvalidAction(
                    f"Could not find operation {target}",
                    hint="the SQS API takes POST requests with an X-Amz-Target: "
                    "AmazonSQS.<Action> header; use an AWS SDK or the AWS CLI",
                )
            handler = self._actions.actions.get(action)
            if handler is None:
                raise _unknown(action)
            if not query:
                data = _parse(await _read_body(receive))
            params = Params(data)
            host = headers.get(b"host", b"").decode("latin-1") or _server(scope)
            if action == "ReceiveMessage":
                # A long poll must end when its client goes away, or it would take (and hide
                # for a visibility timeout) a message nobody will see.
                result = await _unless_disconnected(handler(params, host), receive)
                if result is None:
                    return
            else:
                result = await handler(params, host)
        except QueueError as error:
            log_hint(error, action, request_id)
            await _respond_error(send, error, request_id, query)
            return
        except Exception:
            logger.exception("SQS request %s (%s) failed", request_id, action)
            bug = InternalError("We encountered an internal error. Please try again.")
            await _respond_error(send, bug, request_id, query)
            return
        if query:
            await _respond(
                send, 200, sqs_query.result(action, result, request_id), request_id, xml=True
            )
        else:
            await _respond(send, 200, orjson.dumps(result), request_id)


def _unknown(action: str) -> QueueError:
    if action in UNSUPPORTED_ACTIONS:
        return UnsupportedOperation(
            f"{action} is not supported.",
            hint=f"skylift does not implement {action}: {UNSUPPORTED_ACTIONS[action]}; leave "
            "the call out when running on skylift",
        )
    return InvalidAction(
        f"The action {action} is not valid for this web service.",
        hint="use one of the SQS actions (CreateQueue, SendMessage, ReceiveMessage, ...)",
    )


def log_hint(error: QueueError, action: str, request_id: str) -> None:
    """Put what to do about a refused request into skylift's log: never into the answer,
    which holds SQS's own words."""
    if error.hint is not None:
        logger.warning("SQS %s (request %s): %s", action, request_id, error)


def _error_body(error: QueueError) -> bytes:
    return orjson.dumps({"__type": error.type, "message": error.aws_message})


def _parse(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidParameterValue(
            "The request body is not valid JSON.",
            hint=f"{exc}; send the parameters as one JSON object",
        ) from None
    if not isinstance(data, dict):
        raise InvalidParameterValue(
            "The request body is not valid JSON.",
            hint="send the parameters as one JSON object",
        )
    return data


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise InvalidParameterValue(
                "One or more parameters are invalid. Reason: Message must be shorter than "
                "1048576 bytes.",
                hint=f"the request is larger than {MAX_BODY} bytes; send large payloads by "
                "reference (e.g. an S3 key)",
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _unless_disconnected(work: Awaitable[Result], receive: Receive) -> Result | None:
    """``work``'s result, or None (with ``work`` cancelled) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        return None
    return task.result()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _query_request(scope: Scope, receive: Receive) -> tuple[str, dict[str, Any]]:
    """A query-protocol request's action and parameters, from its form body and its query
    string (a GET, or a POST with parameters in the URL, as some tools send)."""
    form = (await _read_body(receive)).decode("utf-8", "replace")
    url_params = scope.get("query_string", b"").decode("latin-1")
    text = "&".join(part for part in (url_params, form) if part)
    return sqs_query.parse(text, scope.get("path", "/"))


async def _respond_error(send: Send, error: QueueError, request_id: str, query: bool) -> None:
    if query:
        await _respond(send, error.status, sqs_query.error(error, request_id), request_id, xml=True)
    else:
        await _respond(send, error.status, _error_body(error), request_id, error)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    error: QueueError | None = None,
    *,
    xml: bool = False,
) -> None:
    headers = [
        (b"content-type", b"text/xml" if xml else b"application/x-amz-json-1.0"),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    if error is not None:
        fault = "Sender" if error.sender_fault else "Receiver"
        headers.append((b"x-amzn-query-error", f"{error.aws_query_code};{fault}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _is_query_protocol(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    form = headers.get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded")
    return form or b"Action=" in scope.get("query_string", b"")


def _server(scope: Scope) -> str:
    server = scope.get("server")
    return f"{server[0]}:{server[1]}" if server else "localhost"
