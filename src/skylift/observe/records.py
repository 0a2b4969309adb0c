"""One invocation as the log events CloudWatch stores for it, text or JSON.

Text (the default): `START`, each line the function wrote, the platform's timeout or
crash lines, `END`, `REPORT`. With the JSON log format (`AWS_LAMBDA_LOG_FORMAT=JSON`)
Lambda writes its platform lines as JSON records instead: `platform.start`, then
`platform.runtimeDone` where END was, and `platform.report`.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import orjson

from skylift.engine.instance import InvocationResult
from skylift.observe.report import end_line, report_line, start_line
from skylift.spec import FunctionSpec

Event = tuple[int, str]  # (epoch milliseconds, message): one CloudWatch log event
TIMED_OUT = b'"Sandbox.Timedout"'
EXITED = b'"Runtime.ExitError"'


def outcome(result: InvocationResult) -> str:
    """ "success", "timeout" or "error" (a function error, a crash, a too large answer)."""
    if result.error is None:
        return "success"
    return "timeout" if TIMED_OUT in result.payload else "error"


def iso(ms: int) -> str:
    """CloudWatch's timestamp form: 2024-01-01T00:00:00.000Z."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def invocation_events(
    spec: FunctionSpec,
    result: InvocationResult,
    ended_ms: int | None = None,
    produced: int | None = None,
) -> list[Event]:
    """The log events of one invocation that ended at `ended_ms` (default: now);
    `produced`: its result's size when `result.payload` is not the result (a stored
    digest's), for the JSON format's `producedBytes`."""
    end = int(time.time() * 1000) if ended_ms is None else ended_ms
    start = end - int(result.duration_ms)
    json_format = spec.log_config.format == "JSON"
    rid = result.request_id
    events: list[Event] = [(start, _start_record(rid, start) if json_format else start_line(rid))]
    # Output lines carry the start time: the worker does not time-stamp them, and
    # sorting by time must keep them between START and END.
    body = result.logs.decode("utf-8", "replace")
    events.extend((start, line) for line in body.splitlines() if line)
    status = telemetry_status(result)
    if json_format:
        size = len(result.payload) if produced is None else produced
        events.append((end, _runtime_done(result, end, status, size)))
        events.append((end, _report_record(spec, result, end, status)))
    else:
        events.extend((end, line) for line in _failure_lines(result, end))
        report = report_line(spec, result)
        if status in ("timeout", "error"):
            report += f"Status: {status}\t" + _error_type_field(result)
        events.append((end, end_line(rid)))
        events.append((end, report))
    return events


def telemetry_status(result: InvocationResult) -> str:
    """The Telemetry API's status: success, failure (the function's error), error (the
    runtime died), timeout."""
    if result.error is None:
        return "success"
    if TIMED_OUT in result.payload:
        return "timeout"
    return "error" if EXITED in result.payload else "failure"


def _platform_failure(result: InvocationResult) -> bool:
    return TIMED_OUT in result.payload or EXITED in result.payload


def _error_type(result: InvocationResult) -> str | None:
    try:
        payload = orjson.loads(result.payload)
    except orjson.JSONDecodeError:
        return None
    kind = payload.get("errorType") if isinstance(payload, dict) else None
    return kind if isinstance(kind, str) else None


def _error_type_field(result: InvocationResult) -> str:
    kind = _error_type(result)
    return f"Error Type: {kind}\t" if kind and kind != "Sandbox.Timedout" else ""


def _failure_lines(result: InvocationResult, end: int) -> list[str]:
    """What Lambda's platform writes when the instance timed out or died."""
    if result.error is None or not _platform_failure(result):
        return []
    try:
        message = str(orjson.loads(result.payload).get("errorMessage", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return []
    if TIMED_OUT in result.payload:
        # "RequestId: X Error: Task timed out after 3.00 seconds" -> CloudWatch's line.
        detail = message.split(" Error: ", 1)[-1]
        return [f"{iso(end)} {result.request_id} {detail}"]
    return [message, "Runtime.ExitError"]


def _record(kind: str, ms: int, record: dict[str, object]) -> str:
    return orjson.dumps({"time": iso(ms), "type": kind, "record": record}).decode()


def _start_record(request_id: str, ms: int) -> str:
    return _record("platform.start", ms, {"requestId": request_id, "version": "$LATEST"})


def _runtime_done(result: InvocationResult, ms: int, status: str, produced: int) -> str:
    record: dict[str, object] = {
        "requestId": result.request_id,
        "status": status,
        "metrics": {
            "durationMs": round(result.duration_ms, 3),
            "producedBytes": produced,
        },
    }
    if status != "success":
        record["errorType"] = _error_type(result) or "Unknown"
    return _record("platform.runtimeDone", ms, record)


def _report_record(spec: FunctionSpec, result: InvocationResult, ms: int, status: str) -> str:
    metrics: dict[str, object] = {
        "durationMs": round(result.duration_ms, 2),
        "billedDurationMs": math.ceil(result.duration_ms),
        "memorySizeMB": spec.memory,
        "maxMemoryUsedMB": result.max_memory_mb,
    }
    if result.init_ms is not None:
        metrics["initDurationMs"] = round(result.init_ms, 2)
    record: dict[str, object] = {
        "requestId": result.request_id,
        "metrics": metrics,
        "status": status,
    }
    if status != "success":
        record["errorType"] = _error_type(result) or "Unknown"
    return _record("platform.report", ms, record)
