"""What one invocation produced (`InvocationResult`), and Lambda's error payloads for
invocations their instance did not finish: a timeout, a worker that died, a response
over the synchronous limit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from skylift.runtime.sandbox import OOM_SUFFIX


@dataclass(slots=True)
class InvocationResult:
    """What one invocation produced, as the Invoke API and the gateway need it."""

    request_id: str
    payload: bytes  # JSON: the result, or AWS's error payload
    error: str | None  # None on success; else the X-Amz-Function-Error value ("Unhandled")
    logs: bytes
    duration_ms: float
    init_ms: float | None = None  # set when the invocation started a new instance
    max_memory_mb: int = 0
    event: bytes | None = None  # what it ran on: set by the invoker, stored for replay
    trigger: str = "invoke"  # what invoked it (`TRIGGERS`): set by the invoker

    def decoded(self) -> Any:
        return orjson.loads(self.payload)


# What invoked a function, as `skylift_invocations_total{trigger}` names it: an API
# Gateway route, a function URL, an SQS event source mapping, a schedule, an S3
# notification, an asynchronous Invoke (InvocationType=Event, a destination), a
# synchronous Invoke (the Lambda API, `skylift invoke`, the test client), a replay.
TRIGGERS = ("api", "url", "sqs", "schedule", "s3", "event", "invoke", "replay")

MAX_RESPONSE = 6 * 1024 * 1024 + 100  # Lambda's 6 MB synchronous response limit, as it counts


def too_large(size: int) -> bytes:
    return orjson.dumps(
        {
            "errorMessage": f"Response payload size ({size} bytes) exceeded maximum allowed "
            f"payload size ({MAX_RESPONSE} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    )


def timed_out(request_id: str, seconds: float) -> dict[str, Any]:
    """Lambda's payload for an invocation that ran past its timeout."""
    message = f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds"
    return {"errorType": "Sandbox.Timedout", "errorMessage": message}


def exited(request_id: str, status: str) -> dict[str, Any]:
    """Lambda's payload for an instance that died mid-invocation ("exit status 3"), or
    that its memory limit killed (`Runtime.OutOfMemory`)."""
    if status.endswith(OOM_SUFFIX):
        return {
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
            + status.removesuffix(OOM_SUFFIX),
        }
    reason = (
        "Runtime exited without providing a reason"
        if status == "exit status 0"
        else f"Runtime exited with error: {status}"
    )
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: {reason}",
    }


def failed_result(
    request_id: str, started: float, payload: dict[str, Any], logs: bytes
) -> InvocationResult:
    """The result of an invocation its instance did not survive."""
    return InvocationResult(
        request_id=request_id,
        payload=orjson.dumps(payload),
        error="Unhandled",
        logs=logs,
        duration_ms=(time.monotonic() - started) * 1000,
        init_ms=None,  # the instance never finished its first invocation
    )
