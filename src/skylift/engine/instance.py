"""One function instance: a worker process and the supervisor's channel to it.

The supervisor enforces the timeout here (kill, then AWS's `Sandbox.Timedout` error)
and turns a worker that dies mid-invocation into `Runtime.ExitError`. The worker comes
from a `Parent`: the function's zygote forks it, or, for `spawn=True`, a
`skylift.engine.spawner.Spawner` starts it as a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# Results live in `results.py`; importers of this module find them here too.
from skylift.engine.results import MAX_RESPONSE as MAX_RESPONSE
from skylift.engine.results import InvocationResult as InvocationResult
from skylift.engine.results import exited as exited
from skylift.engine.results import failed_result as failed_result
from skylift.engine.results import timed_out as timed_out
from skylift.engine.results import too_large
from skylift.engine.zygote import Forked
from skylift.runtime import wire
from skylift.runtime.output import tail
from skylift.runtime.sandbox import OOM_SUFFIX
from skylift.spec import FunctionSpec


class Parent(Protocol):
    """What starts an instance's worker and learns how it ended (a `Zygote`, a `Spawner`)."""

    async def fork(self, function: str) -> Forked:
        """Start a new worker process for `function`."""

    def kill(self, pid: int) -> None:
        """Kill worker `pid` and what it started, unless it was already reaped."""

    async def exit_status(self, pid: int, timeout: float = 1.0) -> str | None:
        """How worker `pid` ended ("exit status 1", "signal: killed"); None if not yet."""


class WorkerLost(Exception):
    """The worker's channel closed mid-invocation (it died, or was killed)."""


Done = Callable[[InvocationResult], None]


class _Channel(asyncio.Protocol):
    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.reader = wire.FrameReader()

    def data_received(self, data: bytes) -> None:
        for frame in self.reader.feed(data):
            self.instance._answered(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.instance._lost()


@dataclass
class _Call:
    """The invocation an instance is running."""

    request_id: str
    started: float
    deadline: float  # time.monotonic() at its timeout
    cold: bool
    done: Done
    streamer: _Streamer | None = None


class Instance:
    """A warm worker for one function; runs one invocation at a time."""

    def __init__(self, spec: FunctionSpec, parent: Parent, forked: Forked) -> None:
        self.spec = spec
        self.parent = parent
        self.pid = forked.pid
        self.alive = not forked.dead
        self.cold = True
        self.tenant: str | None = None  # the one tenant it serves (TenancyConfig PER_TENANT)
        self.last_used = time.monotonic()
        self.worked = 0.0  # seconds its worker spent on invocations, as it reports them
        # (one that timed out or crashed: the seconds it held the instance)
        self._forked = forked
        self._transport: asyncio.Transport | None = None
        self._call: _Call | None = None
        self._warming: asyncio.Future[None] | None = None
        # One timer per instance for timeouts and output streaming, moved only when an
        # invocation needs it earlier: invocations far shorter than their timeout do not
        # each make and cancel one.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when it fires, in time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, spec: FunctionSpec, parent: Parent) -> Instance:
        instance = cls(spec, parent, await parent.fork(spec.name))
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_unix_connection(
                lambda: _Channel(instance), sock=instance._forked.channel
            )
        except BaseException:  # cancelled (or failed) before it was ours: leak nothing
            instance.kill()
            instance._forked.channel.close()
            instance.close()
            raise
        instance._transport = transport
        return instance

    async def warm(self, timeout: float) -> None:
        """Wait until the worker is ready to serve (its sandbox entered, its after-fork
        hooks run), at most `timeout` seconds, and warm the channel's code paths on both
        sides with one round trip that runs no user code and is no invocation."""
        if self._transport is None or not self.alive or self._call is not None:
            return
        self._warming = asyncio.get_running_loop().create_future()
        self._transport.write(wire.pack({"warm": True}))
        try:
            await asyncio.wait_for(self._warming, timeout)
        except (TimeoutError, WorkerLost):
            pass  # the first invocation will wait for it, or say how it died
        finally:
            self._warming = None

    async def invoke(
        self,
        request_id: str,
        event: bytes,
        *,
        client_context: dict[str, Any] | None = None,
        trace_id: str | None = None,
        on_output: Callable[[bytes], None] | None = None,
        tenant_id: str | None = None,
    ) -> InvocationResult:
        """Run one invocation; never raises for anything the function does.

        `on_output`, if given, gets the output in whole lines while it runs (looked at
        every `STREAM_EVERY` seconds, so a quick invocation never pays for it).
        """
        fut: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()

        def done(result: InvocationResult) -> None:
            if not fut.done():  # not cancelled meanwhile
                fut.set_result(result)

        self.start_invoke(
            request_id,
            event,
            done,
            client_context=client_context,
            trace_id=trace_id,
            on_output=on_output,
            tenant_id=tenant_id,
        )
        try:
            return await fut
        except asyncio.CancelledError:
            self.abandon()
            raise

    def start_invoke(
        self,
        request_id: str,
        event: bytes,
        done: Done,
        *,
        client_context: dict[str, Any] | None = None,
        trace_id: str | None = None,
        on_output: Callable[[bytes], None] | None = None,
        tenant_id: str | None = None,
    ) -> None:
        """Send one invocation and return; `done` gets its result, called from the
        channel's callback when the answer arrives (no task, no future), from the timer
        at the timeout, or when the worker died, once its exit status is known."""
        assert self._transport is not None and self._call is None
        timeout = self.spec.timeout
        started = time.monotonic()
        header: dict[str, Any] = {
            "id": request_id,
            "deadline": int(time.time() * 1000 + timeout * 1000),
        }
        if client_context is not None:
            header["cc"] = client_context
        if trace_id:
            header["trace"] = trace_id
        if tenant_id is not None:
            header["tenant"] = tenant_id
        call = self._call = _Call(request_id, started, started + timeout, self.cold, done)
        self.cold = False
        if not self.alive:  # the worker died before this invocation reached it
            self._lost()
            return
        self._transport.write(wire.pack(header, event))
        if on_output is not None:
            call.streamer = _Streamer(self, on_output)
        self._arm(started + (timeout if on_output is None else min(timeout, STREAM_EVERY)))

    def _arm(self, due: float) -> None:
        """Have the timer fire at `due` at the latest."""
        if self._timer is not None:
            if self._timer_at <= due:
                return  # it fires first, and moves itself on then
            self._timer.cancel()
        self._timer_at = due
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, due - time.monotonic()), self._tick)

    def abandon(self) -> None:
        """The caller gave up on the running invocation (a shutdown). The worker is still
        busy with it, so it must not serve another, or that one would get this answer."""
        if self._end() is not None:
            self.kill()

    def _end(self) -> _Call | None:
        call, self._call = self._call, None
        if call is not None:
            self.last_used = time.monotonic()
        return call

    def _answered(self, frame: tuple[dict[str, Any], bytes, bytes]) -> None:
        reply, body, logs = frame
        if "warm" in reply:
            if self._warming is not None and not self._warming.done():
                self._warming.set_result(None)
            return
        call = self._end()
        if call is None:
            return  # the answer of an invocation abandoned or timed out meanwhile
        self.worked += reply.get("t", 0.0)
        if reply.get("exit"):
            self.alive = False  # the worker exits after this answer: retire it now
        error = None if reply["ok"] else "Unhandled"
        if len(body) > MAX_RESPONSE:
            body, error = too_large(len(body)), "Unhandled"
        call.done(
            InvocationResult(
                request_id=call.request_id,
                payload=body,
                error=error,
                logs=logs,
                duration_ms=(time.monotonic() - call.started) * 1000,
                init_ms=reply.get("init_ms") if call.cold else None,
                max_memory_mb=reply["rss_kb"] // 1024,
            )
        )

    def _tick(self) -> None:
        self._timer = None
        call = self._call
        if call is None:
            return  # idle: the next invocation arms it again
        now = time.monotonic()
        if now < call.deadline:
            due = call.deadline
            if call.streamer is not None:
                if now - call.started >= STREAM_EVERY:
                    call.streamer.look()
                    due = min(due, now + STREAM_EVERY)
                else:  # the timer was set for an earlier invocation
                    due = min(due, call.started + STREAM_EVERY)
            self._arm(due)
            return
        self._end()
        self.kill()
        self.worked += now - call.started  # held that long: a hang is no quick invocation
        payload = timed_out(call.request_id, now - call.started)
        call.done(self._failed(call.request_id, call.started, payload))

    def _lost(self) -> None:
        self.alive = False
        if self._warming is not None and not self._warming.done():
            self._warming.set_exception(WorkerLost())
        call = self._end()
        if call is not None:  # it died mid-invocation: ask its parent how, then answer
            task = asyncio.ensure_future(self._report_exit(call))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _report_exit(self, call: _Call) -> None:
        status = await self.parent.exit_status(self.pid) or "signal: killed"
        self.worked += time.monotonic() - call.started  # the worker reported no time
        result = self._failed(call.request_id, call.started, exited(call.request_id, status))
        if status.endswith(OOM_SUFFIX):
            result.max_memory_mb = self.spec.memory  # as Lambda reports it: the limit
        call.done(result)

    def _failed(self, request_id: str, started: float, payload: dict[str, Any]) -> InvocationResult:
        self.alive = False
        # The worker is gone; what it wrote is still in its memfd.
        logs = _read_all(self._forked.log_fd)
        self.close()
        return failed_result(request_id, started, payload, logs)

    def kill(self) -> None:
        self.alive = False
        self.parent.kill(self.pid)

    def close(self) -> None:
        """Stop the worker (closing its channel makes it exit) and free its resources."""
        self.alive = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._forked.log_fd >= 0:
            os.close(self._forked.log_fd)
            self._forked = Forked(self._forked.pid, self._forked.channel, -1)


def _read_all(fd: int) -> bytes:
    return tail(fd)[0] if fd >= 0 else b""


STREAM_EVERY = 0.1  # seconds between looks at a running invocation's output


class _Streamer:
    """Hands a running invocation's new output, in whole lines, to `sink`, each time the
    invocation's timer looks (every `STREAM_EVERY` seconds).

    It reads the worker's memfd from where it last stopped; the worker only truncates it
    once the invocation is over (or when it grows past `output.TRIM_AT`, then it starts
    again from the new start).
    """

    def __init__(self, instance: Instance, sink: Callable[[bytes], None]):
        self.instance = instance
        self.sink = sink
        self.offset = 0

    def look(self) -> None:
        fd = self.instance._forked.log_fd
        if fd < 0:
            return
        try:
            size = os.fstat(fd).st_size
            if size < self.offset:  # trimmed under us: go on from its new start
                self.offset = 0
            if size > self.offset:
                data = os.pread(fd, min(size - self.offset, 1 << 20), self.offset)
                # Whole lines; a line longer than what is read at once goes as it is.
                cut = data.rfind(b"\n") + 1 or (len(data) if len(data) == 1 << 20 else 0)
                if cut:
                    self.offset += cut
                    self.sink(data[:cut])
        except OSError:
            return
