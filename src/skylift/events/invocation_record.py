"""The invocation record Lambda sends to an asynchronous invocation's destinations.

Shape from "Capturing records of Lambda asynchronous invocations" (destinations):
{version, timestamp, requestContext{requestId, functionArn, condition,
approximateInvokeCount}, requestPayload, responseContext{statusCode, executedVersion,
functionError}, responsePayload}.
"""

from __future__ import annotations

import json
import time
from typing import Any

# Why an invocation's record was sent.
SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def invocation_record(
    *,
    function_arn: str,
    request_id: str,
    condition: str,
    invoke_count: int,
    request_payload: bytes,
    response_payload: bytes | None,
    function_error: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    """The record; `response_payload` is None when the function never ran (event too old)."""
    moment = time.time() if now is None else now
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
        + f".{int(moment * 1000) % 1000:03d}Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
    }
    if response_payload is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            context["functionError"] = function_error
        record["responseContext"] = context
        record["responsePayload"] = _json_or_text(response_payload)
    return record
