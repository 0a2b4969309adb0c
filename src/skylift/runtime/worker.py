"""The worker loop: one forked process, one function, one invocation at a time.

Runs in the child right after the zygote forks it. It reads invocation frames from its
channel, calls the handler, and answers with the result (or AWS's error payload) plus
everything the invocation wrote to stdout/stderr, captured at the file-descriptor level
so output from C extensions and subprocesses is kept too.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import resource
import select
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

try:
    import orjson
except ImportError:  # a function on another interpreter (`Runtime`): skylift's orjson is
    orjson = None  # type: ignore[assignment]  # built for skylift's Python; the stdlib decodes

from skylift.runtime import logs, results, wire
from skylift.runtime.context import ContextMaker, LambdaContext
from skylift.runtime.environ import (
    apply,
    function_arn,
    lambda_environment,
    log_group,
    new_log_stream,
)
from skylift.runtime.faults import Fault, error_payload, exception_payload
from skylift.runtime.output import Output
from skylift.runtime.trace_env import TraceVariable
from skylift.spec import FunctionSpec

Handler = Callable[[Any, LambdaContext], Any]


# Digits to "0", everything else to " ": 19 zeros in a row mean an integer literal that
# orjson would turn into a float (beyond 64 bits), or a long number the stdlib parses.
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_NUMBER = b"0" * 19


def decode_event(body: bytes) -> Any:
    """The event as the Lambda runtime's `json.loads` reads it, with orjson where it
    agrees: a long integer (which orjson would make a float), NaN, a byte-order mark or
    anything else orjson refuses goes to the stdlib, which also raises what Lambda does."""
    if orjson is not None and _LONG_NUMBER not in body.translate(_DIGITS):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


# The same ru_maxrss as RUSAGE_SELF (both are the process's peak RSS), at a third of the
# cost: RUSAGE_SELF sums the CPU time of every thread, locking each one's run queue.
_RUSAGE = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def _batch_scheduling() -> None:
    """SCHED_BATCH: a worker woken by its next invocation does not preempt the supervisor
    (which is then still answering the last one), saving a context switch per request
    under load. Its threads and subprocesses inherit it. Skipped where not permitted."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def serve(
    channel: socket.socket,
    log_fd: int,
    spec: FunctionSpec,
    handler: Handler | Fault,
    forked_at: float,
) -> NoReturn:
    """Serve invocations until the supervisor closes the channel."""
    _batch_scheduling()
    log_stream = new_log_stream()
    apply(lambda_environment(spec, log_stream))
    # Line buffering: a worker killed mid-invocation still leaves its printed lines.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    _STREAMS[:] = [sys.stdout, sys.stderr]
    logs.install()  # normally done before the init phase; this applies the function's format
    make_context = ContextMaker(
        LambdaContext(
            aws_request_id="",
            deadline_ms=0,
            invoked_function_arn=function_arn(spec.name),
            function_name=spec.name,
            function_version="$LATEST",
            memory_limit_in_mb=spec.memory,
            log_group_name=log_group(spec.name),
            log_stream_name=log_stream,
        )
    )
    output = Output(log_fd, captured=spec.debug != "pdb")
    encoder = results.ResultEncoder(spec.runtime)
    trace = TraceVariable()
    init_ms: float | None = (time.monotonic() - forked_at) * 1000
    # Wait in poll(), not recv(): when the supervisor reads our answer, the kernel wakes
    # whoever sleeps on this socket for its write space, and a recv() waiter wakes, finds
    # nothing and sleeps again (a second context switch per invocation); poll() only
    # wakes for input.
    incoming = select.poll()
    incoming.register(channel, select.POLLIN)
    while True:
        try:
            incoming.poll()
            header, body, _ = wire.read_frame(channel)
        except (EOFError, ConnectionError):
            os._exit(0)
        began = time.monotonic()
        if "warm" in header:  # the supervisor's warm-up: ready, and no user code runs
            channel.sendall(wire.pack({"warm": True}))
            continue
        request_id = header["id"]
        logs.set_request_id(request_id)
        trace.set(header.get("trace"))
        context = make_context(
            request_id,
            header["deadline"],
            header.get("cc"),
            header.get("identity"),
            header.get("tenant"),
        )
        ok, out = _invoke(handler, body, context, log_fd, encoder)
        intact = _restore_std_streams(log_fd)
        reply: dict[str, Any] = {
            "ok": ok,
            "rss_kb": resource.getrusage(_RUSAGE).ru_maxrss,
            "t": time.monotonic() - began,  # the invocation's own seconds here (scale_out.py)
        }
        if init_ms is not None:
            reply["init_ms"], init_ms = init_ms, None
        fatal = (isinstance(handler, Fault) and handler.fatal) or not intact
        if fatal:
            reply["exit"] = True  # so the supervisor never hands this instance more work
        channel.sendall(wire.pack(reply, out, output.drain()))
        if fatal:
            os._exit(1)  # e.g. an after_fork hook failed: a fresh instance may succeed


_STREAMS: list[Any] = []  # the runtime's own sys.stdout and sys.stderr, once set up


def _restore_std_streams(log_fd: int) -> bool:
    """Put fds 0, 1 and 2 (and sys.stdout/stderr) back as the runtime set them, whatever
    the handler closed or replaced, so no invocation can break the next one. False when
    the instance cannot be repaired (its log itself is gone): it retires after answering.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, its fd gone, or None
            pass
    if _STREAMS:  # a handler's replacement (an io.StringIO, say) goes; ours come back
        sys.stdout, sys.stderr = _STREAMS
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
    except OSError:
        return False
    try:
        fcntl.fcntl(0, fcntl.F_GETFD)  # open? (a third of fstat's cost: no stat_result)
    except OSError:
        devnull = os.open(os.devnull, os.O_RDONLY)
        if devnull != 0:
            os.dup2(devnull, 0)
            os.close(devnull)
    if sys.stdout is None or sys.stdout.closed:
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    if sys.stderr is None or sys.stderr.closed:
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    _STREAMS[:] = [sys.stdout, sys.stderr]
    logs.set_stream(sys.stdout)  # the root handler writes where print does
    return True


def _invoke(
    handler: Handler | Fault,
    body: bytes,
    context: LambdaContext,
    log_fd: int,
    encoder: results.ResultEncoder,
) -> tuple[bool, bytes]:
    request_id = context.aws_request_id
    try:
        if isinstance(handler, Fault):
            raise handler
        result = handler(decode_event(body), context)
    except Fault as fault:
        payload = fault.payload(request_id)
    except Exception as exc:
        payload = exception_payload(exc, request_id)
    else:
        try:
            return True, encoder.encode(result)
        except results.MarshalError as exc:  # a loop, a set, nesting too deep...
            payload = error_payload(str(exc), "Runtime.MarshalError", request_id)
        except UnicodeEncodeError:
            _die_as_the_runtime(log_fd)
    _restore_std_streams(log_fd)  # the handler may have closed what the error goes to
    try:
        _log_error(payload, encoder)
        return False, encoder.encode(payload)
    except UnicodeEncodeError:
        _die_as_the_runtime(log_fd)


def _die_as_the_runtime(log_fd: int) -> NoReturn:
    """What the runtime does when it cannot send its answer as UTF-8 (a lone surrogate,
    written as it is by python3.12 and later): the exception ends its process, with its
    traceback in the log, and Lambda answers Runtime.ExitError."""
    _restore_std_streams(log_fd)
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)


def _log_error(payload: dict[str, Any], encoder: results.ResultEncoder) -> None:
    # Lambda writes every unhandled error to the function's log in this shape.
    print(logs.error_line(payload, encoder.json.encode))
