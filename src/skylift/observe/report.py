"""Lambda's per-invocation log lines: START, END and REPORT."""

from __future__ import annotations

import math

from skylift.engine.instance import InvocationResult
from skylift.spec import FunctionSpec


def start_line(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(spec: FunctionSpec, result: InvocationResult) -> str:
    """REPORT as Lambda prints it; Init Duration only on a cold start."""
    line = (
        f"REPORT RequestId: {result.request_id}\tDuration: {result.duration_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(result.duration_ms)} ms\tMemory Size: {spec.memory} MB\t"
        f"Max Memory Used: {result.max_memory_mb} MB\t"
    )
    if result.init_ms is not None:
        line += f"Init Duration: {result.init_ms:.2f} ms\t"
    return line


def invocation_log(spec: FunctionSpec, result: InvocationResult) -> str:
    """The whole log of one invocation, as it would appear in CloudWatch."""
    body = result.logs.decode("utf-8", "replace")
    if body and not body.endswith("\n"):
        body += "\n"
    return (
        f"{start_line(result.request_id)}\n{body}{end_line(result.request_id)}\n"
        f"{report_line(spec, result)}\n"
    )
