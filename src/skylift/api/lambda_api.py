"""Lambda's Invoke API as an ASGI app, as boto3's ``lambda`` client and the AWS CLI speak it.

A request is ``POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=...]`` with
the event as its body and the ``X-Amz-Invocation-Type``, ``X-Amz-Log-Type`` and
``X-Amz-Client-Context`` headers. The answer is the function's result, or AWS's error
payload with ``X-Amz-Function-Error: Unhandled``, and ``x-amzn-RequestId``: the
invocation's request id, the one the handler saw as ``context.aws_request_id``.

Errors are Lambda's, as ``skylift.api.lambda_rest`` writes them (``Reason`` of
TooManyRequestsException among their members).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from skylift.account import ACCOUNT_ID
from skylift.api.lambda_rest import (
    MAX_PAYLOAD,
    FunctionRef,
    LambdaError,
    function_not_found,
    invalid_content,
    invalid_parameter,
    respond,
    serve_operation,
    unknown_operation,
    user_error,
)
from skylift.asgi_types import Receive, Scope, Send
from skylift.engine.instance import InvocationResult
from skylift.engine.invoker import Invoker
from skylift.errors import FunctionNotFound, TenantMismatch, Throttled
from skylift.observe.report import invocation_log
from skylift.spec import FunctionSpec

Headers = list[tuple[bytes, bytes]]


PREFIX = "/2015-03-31/functions/"
MAX_ASYNC_PAYLOAD = 1024 * 1024  # Lambda's limit for an asynchronous invocation's event
# (function, event, tenant_id=...) -> the stored event's request id
logger = logging.getLogger("skylift.api.lambda")
Enqueue = Callable[..., Awaitable[str]]
MAX_CLIENT_CONTEXT = 3583  # bytes of base64, as the Invoke API reference documents
LOG_TAIL = 4096  # X-Amz-Log-Result carries the last 4 KB of the log
INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")
LOG_TYPES = ("Tail", "None")


def _not_one_of(value: str, member: str, allowed: tuple[str, ...]) -> LambdaError:
    # Lambda's request validation (Coral's) words enum violations this way.
    return user_error(
        400,
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]",
    )


def _too_large(limit: int = MAX_PAYLOAD) -> LambdaError:
    # What Lambda's front end answers: a code outside Lambda's model (so boto3 raises a
    # plain ClientError, not RequestTooLargeException) and a body with no Type.
    return LambdaError(
        413,
        "RequestEntityTooLargeException",
        {"Message": f"Request must be smaller than {limit} bytes for the InvokeFunction operation"},
    )


def _tenant_mismatch(exc: TenantMismatch) -> LambdaError:
    # AWS's words ("Troubleshooting tenant isolation"); what to change goes to the log.
    logger.warning("Invoke: %s", exc)
    return invalid_parameter(
        "Tenant ID configuration not specified or passed to a function when tenant "
        "isolation is not enabled."
    )


def _throttled(exc: Throttled) -> LambdaError:
    # Lambda answers "Rate Exceeded."; Throttled's message starts so, then says which limit.
    return user_error(429, "TooManyRequestsException", str(exc), Reason=exc.reason)


def is_lambda_request(scope: Scope) -> bool:
    """Whether an ASGI request is meant for the Lambda API, by its path alone.

    Example: ``if is_lambda_request(scope): await lambda_api(scope, receive, send)``.
    """
    return scope.get("type") == "http" and str(scope.get("path", "")).startswith(PREFIX)


class LambdaApi:
    """An ASGI app serving Lambda's Invoke API over an Invoker.

    Functions are found by name in ``specs``; ARNs name them in ``region`` and skylift's
    account (``skylift.account.ACCOUNT_ID``). Only ``$LATEST`` exists: skylift has no
    published versions or aliases.

    Example::

        api = LambdaApi(platform.invoker, platform.specs, region=platform.region)
        uvicorn.run(api, port=9001)
        # boto3.client("lambda", endpoint_url="http://127.0.0.1:9001", ...).invoke(...)
    """

    def __init__(
        self,
        invoker: Invoker,
        specs: Mapping[str, FunctionSpec],
        *,
        region: str,
        account_id: str = ACCOUNT_ID,
        enqueue: Enqueue | None = None,
    ) -> None:
        self.invoker = invoker
        self.specs = specs
        # Stores an asynchronous invocation durably and returns its request id; without
        # it, Event invocations are refused.
        self.enqueue = enqueue
        self.region = region
        self.account_id = account_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_operation(scope, receive, send, self._invoke)

    async def _invoke(self, scope: Scope, body: bytes | None, request_id: str, send: Send) -> None:
        raw_name = _function_name(scope)
        if raw_name is None:
            raise unknown_operation(scope)
        spec, arn = self._resolve(raw_name, _query_qualifier(scope))
        headers = _headers(scope)
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            raise _not_one_of(invocation_type, "invocationType", INVOCATION_TYPES)
        log_type = headers.get("x-amz-log-type", "None")
        if log_type not in LOG_TYPES:
            raise _not_one_of(log_type, "logType", LOG_TYPES)
        if body is None:
            raise _too_large()
        if spec is None:
            raise function_not_found(arn, self.specs)
        client_context = _client_context(headers.get("x-amz-client-context"))
        tenant_id = headers.get("x-amz-tenant-id")
        if spec.tenant_isolation != (tenant_id is not None):
            raise _tenant_mismatch(TenantMismatch(spec.name, spec.tenant_isolation))
        # An empty body is no event at all; Lambda hands the function {} then.
        event = body or b"{}"
        _check_json(event)
        if invocation_type == "Event":
            if self.enqueue is None:
                raise invalid_parameter(
                    "Asynchronous invocation (InvocationType Event) needs a running "
                    "`skylift up`: invoke with RequestResponse here."
                )
            if len(event) > MAX_ASYNC_PAYLOAD:
                raise _too_large(MAX_ASYNC_PAYLOAD)
            stored = await self.enqueue(spec.name, event, tenant_id=tenant_id)  # durable first
            await respond(send, 202, b"", stored)
            return
        if invocation_type == "DryRun":
            await respond(send, 204, b"", request_id)
            return
        try:
            result = await self.invoker.invoke(
                spec.name,
                event,
                request_id=request_id,
                client_context=client_context,
                tenant_id=tenant_id,
            )
        except TenantMismatch as exc:  # changed meanwhile (UpdateFunctionConfiguration)
            raise _tenant_mismatch(exc) from None
        except FunctionNotFound:
            raise function_not_found(arn, self.specs) from None
        except Throttled as exc:
            raise _throttled(exc) from None
        extra: Headers = [(b"x-amz-executed-version", b"$LATEST")]
        if result.error is not None:
            extra.append((b"x-amz-function-error", result.error.encode()))
        if log_type == "Tail":
            extra.append((b"x-amz-log-result", _log_tail(spec, result)))
        await respond(send, 200, result.payload, result.request_id, extra=extra)

    def _resolve(self, raw_name: str, query: str | None) -> tuple[FunctionSpec | None, str]:
        """The spec FunctionName names (None when there is none), and the ARN it names."""
        ref = FunctionRef.parse(raw_name)
        if ref.qualifier and query and ref.qualifier != query:
            raise invalid_parameter(
                "The derived qualifier from the function name does not match the specified "
                "qualifier."
            )
        qualifier = ref.qualifier or query
        arn = f"arn:aws:lambda:{ref.region or self.region}:{ref.account or self.account_id}"
        arn += f":function:{ref.name}" + (f":{qualifier}" if qualifier else "")
        ref.check_home(arn, self.region, self.account_id)
        if qualifier not in (None, "$LATEST") and ref.name in self.specs:
            raise function_not_found(arn, self.specs)
        return self.specs.get(ref.name), arn


def _function_name(scope: Scope) -> str | None:
    """FunctionName from an Invoke path, or None when the request is not an Invoke."""
    if scope["method"] != "POST":
        return None
    # The raw path, since a percent-encoded "/" in the name must not split it.
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    segments = raw.split(b"?", 1)[0].decode("latin-1").split("/")
    # ["", "2015-03-31", "functions", name, "invocations"]
    if len(segments) != 5 or segments[4] != "invocations" or not segments[3]:
        return None
    return unquote(segments[3])


def _query_qualifier(scope: Scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("Qualifier")
    return values[0] if values else None


def _headers(scope: Scope) -> dict[str, str]:
    # ASGI lower-cases header names; latin-1 decodes any byte, so odd values are refused
    # by the checks on them rather than failing here.
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _client_context(header: str | None) -> dict[str, Any] | None:
    if header is None:
        return None
    if len(header) > MAX_CLIENT_CONTEXT:
        raise invalid_content(
            f"Client context must be at most {MAX_CLIENT_CONTEXT} bytes (base64-encoded); this "
            f"one is {len(header)}. Send larger data in the payload."
        )
    try:
        decoded = orjson.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError):
        decoded = None  # orjson.JSONDecodeError is a ValueError
    if not isinstance(decoded, dict):
        raise invalid_content("Client context must be a valid Base64-encoded JSON object.")
    return decoded


def _check_json(event: bytes) -> None:
    try:
        orjson.loads(event)
    except orjson.JSONDecodeError as exc:
        raise invalid_content(
            f"Could not parse request body into json: Could not parse payload into json: {exc}. "
            "The payload must be one JSON value (an object, array, string, number, true, "
            "false or null)."
        ) from None


def _log_tail(spec: FunctionSpec, result: InvocationResult) -> bytes:
    tail = invocation_log(spec, result).encode()[-LOG_TAIL:]
    # Cutting at a byte count can split a character; drop its remains so the tail decodes.
    start = 0
    while start < len(tail) and tail[start] & 0xC0 == 0x80:
        start += 1
    return base64.b64encode(tail[start:])
