"""Invocations in: pick the function's pool, borrow an instance, run, give it back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from skylift import ids
from skylift.engine import scale_out
from skylift.engine.driver import FunctionInstance
from skylift.engine.instance import Instance, InvocationResult, failed_result
from skylift.engine.pool import Pool
from skylift.engine.recording import Record, ignore
from skylift.errors import FunctionNotFound, TenantMismatch, Throttled
from skylift.runtime.environ import new_trace_id
from skylift.spec import FunctionSpec

# Called with the function, its result and the instance that ran it (its log stream).
Observer = Callable[[FunctionSpec, InvocationResult, object], None]
# Told of an invocation cancelled before it ended (a shutdown): spec, request id, seconds run.
CancelObserver = Callable[[FunctionSpec, str, float], None]
# Told of a running invocation's output, in whole lines: spec, request id, the bytes.
OutputObserver = Callable[[FunctionSpec, str, bytes], None]

logger = logging.getLogger("skylift.invoker")


class Invoker:
    def __init__(self, pools: dict[str, Pool]) -> None:
        self.pools = pools
        self.record: Record = ignore  # throttles are events `skylift describe` lists
        # Called with every result, whatever triggered it: the console, stored logs, metrics.
        self.observers: list[Observer] = []
        self.cancel_observers: list[CancelObserver] = []
        # The terminal of `skylift up` shows output as it is printed.
        self.output_observers: list[OutputObserver] = []
        self._tasks: set[asyncio.Task[InvocationResult]] = set()  # Runtime API invocations

    def _sink(self, spec: FunctionSpec, request_id: str) -> Callable[[bytes], None]:
        def sink(data: bytes) -> None:
            for observer in self.output_observers:
                observer(spec, request_id, data)

        return sink

    def reserved(self, function: str) -> int | None:
        """The function's reserved concurrency now (`skylift scale` changes it), if any."""
        pool = self.pools.get(function)
        return pool.limit if pool is not None and pool.reserved else None

    def invoke_soon(
        self,
        function: str,
        event: bytes,
        done: Callable[[InvocationResult], None],
        later: Callable[[], None] | None = None,
        trigger: str = "api",
    ) -> Soon | None:
        """Start `function` on `event` now if it has an idle instance and the server has
        room; `done` gets the result later, called from the instance's channel (no task,
        no coroutine: an HTTP front can answer from its protocol's callbacks). Returns
        the invocation started (its request id, and what cancels it), or None when it
        would have to wait for an instance or a slot (or be throttled, or the function
        is unknown): then `await invoke()`. With `later`, a caller that would wait for a
        busy instance of a quick function waits in its line with no task
        (`scale_out.Queued`) and gets a `Soon` too; if that wait ends without an
        instance, `later()` is called: then `await invoke()`.

        >>> invoker.invoke_soon("change", b'{"body": "..."}', respond)  # doctest: +SKIP
        """
        pool = self.pools.get(function)
        if pool is None or pool.spec.tenant_isolation:  # a tenant's instance: `invoke()`
            return None
        instance = pool.try_acquire()
        if instance is None:
            return None if later is None else self._queue(pool, event, done, later, trigger)
        request_id = ids.request_id()
        stop = self._run(pool, instance, request_id, event, None, None, done, trigger)
        return Soon(self, pool.spec, request_id, stop)

    def _queue(
        self,
        pool: Pool,
        event: bytes,
        done: Callable[[InvocationResult], None],
        later: Callable[[], None],
        trigger: str,
    ) -> Soon | None:
        request_id = ids.request_id()
        soon = Soon(self, pool.spec, request_id, _not_running)

        def handed(instance: FunctionInstance) -> None:
            soon._stop = self._run(pool, instance, request_id, event, None, None, done, trigger)

        queued = scale_out.queue(pool, handed, later)
        if queued is None:
            return None
        soon._stop = queued.cancel
        return soon

    async def invoke(
        self,
        function: str,
        event: bytes,
        *,
        request_id: str | None = None,
        client_context: dict[str, Any] | None = None,
        trace_id: str | None = None,
        tenant_id: str | None = None,
        trigger: str = "invoke",
    ) -> InvocationResult:
        """Run `function` on `event` (JSON bytes) and return what it produced.

        Function errors, timeouts and crashes come back in the result, never raised.
        Every invocation gets an X-Ray trace header (`_X_AMZN_TRACE_ID`), as on Lambda:
        `trace_id` carries one in (an SQS message's `AWSTraceHeader`), else a new one.
        `trigger` (one of `TRIGGERS`) is what the result says invoked it (metrics).
        """
        pool = self.pools.get(function)
        if pool is None:
            raise FunctionNotFound(function, list(self.pools))
        if pool.spec.tenant_isolation != (tenant_id is not None):
            raise TenantMismatch(function, pool.spec.tenant_isolation)
        # No awaits when an instance is idle (a tenant's instance is picked by the pool).
        instance = pool.try_acquire() if tenant_id is None else None
        if instance is None:
            try:
                instance = await pool.acquire(tenant_id)
            except Throttled as exc:
                self.record(function, "Throttled", f"{exc.reason}: limit {exc.limit}")
                raise
        request_id = request_id or ids.request_id()
        fut: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()

        def done(result: InvocationResult) -> None:
            if not fut.done():
                fut.set_result(result)

        started = time.monotonic()
        stop = self._run(
            pool, instance, request_id, event, client_context, trace_id, done, trigger, tenant_id
        )
        try:
            return await fut
        except asyncio.CancelledError:
            # Cancelled while it ran (a shutdown): it ends here, unless it just finished.
            if fut.cancelled() and stop():
                for cancelled in self.cancel_observers:
                    cancelled(pool.spec, request_id, time.monotonic() - started)
            raise

    def _run(
        self,
        pool: Pool,
        instance: FunctionInstance,
        request_id: str,
        event: bytes,
        client_context: dict[str, Any] | None,
        trace_id: str | None,
        done: Callable[[InvocationResult], None],
        trigger: str,
        tenant_id: str | None = None,
    ) -> Callable[[], bool]:
        """Run one invocation on an acquired instance; `done` gets the result once the
        instance is back in its pool and every observer has seen it. Returns what stops
        it (the instance is killed and given back; `done` is not called): True if it
        stopped it, False if it had already finished (its instance may serve another
        invocation by now, which must not be touched)."""
        released = False

        def give_back() -> bool:
            """Give the instance back to its pool, once (False: it was already)."""
            nonlocal released
            if released:
                return False
            released = True
            pool.release(instance)
            return True

        def finish(result: InvocationResult) -> None:
            if not give_back():
                return  # stopped meanwhile (a shutdown): nobody waits for it
            result.event = event  # kept with the log, for `skylift replay`
            result.trigger = trigger
            for observer in self.observers:
                try:
                    observer(pool.spec, result, instance)
                except Exception:  # an observer's bug must not cost the caller its result
                    logger.exception("an observer of %s failed", pool.spec.name)
            try:
                done(result)
            except Exception:  # called from the instance's channel: it must not break it
                logger.exception("answering an invocation of %s failed", pool.spec.name)

        sink = self._sink(pool.spec, request_id) if self.output_observers else None
        trace = trace_id or new_trace_id()
        if isinstance(instance, Instance):
            try:
                instance.start_invoke(
                    request_id,
                    event,
                    finish,
                    client_context=client_context,
                    trace_id=trace,
                    tenant_id=tenant_id,
                    on_output=sink,
                )
            except BaseException:  # e.g. a client context that does not serialise
                instance.abandon()  # its call was set: it must not serve another
                give_back()
                raise

            def stop() -> bool:
                if released:
                    return False
                instance.abandon()
                return give_back()

            return stop
        # A Runtime API instance answers through its own server: follow it in a task.
        task = asyncio.ensure_future(
            instance.invoke(
                request_id,
                event,
                client_context=client_context,
                trace_id=trace,
                on_output=sink,
                tenant_id=tenant_id,
            )
        )
        self._tasks.add(task)

        def followed(task: asyncio.Task[InvocationResult]) -> None:
            self._tasks.discard(task)
            if task.cancelled():  # stopped by a shutdown
                give_back()
                return
            exc = task.exception()
            if exc is None:
                finish(task.result())
                return
            # It never raises for what the function does: this is skylift's own failure.
            logger.error("invoking %s failed: %r", pool.spec.name, exc)
            payload = {"errorType": "ServiceException", "errorMessage": str(exc)}
            finish(failed_result(request_id, started, payload, b""))

        started = time.monotonic()
        task.add_done_callback(followed)

        def stop_task() -> bool:
            return not released and task.cancel()  # `followed` gives the instance back

        return stop_task


class Soon:
    """An invocation `Invoker.invoke_soon` started: its request id, and `cancel()`."""

    __slots__ = ("_invoker", "_spec", "_started", "_stop", "request_id")

    def __init__(
        self, invoker: Invoker, spec: FunctionSpec, request_id: str, stop: Callable[[], bool]
    ) -> None:
        self._invoker = invoker
        self._spec = spec
        self._started = time.monotonic()
        self._stop = stop
        self.request_id = request_id

    def cancel(self) -> None:
        """Stop it (a shutdown): its instance is killed, `done` is not called, and the
        cancel observers are told. After `done`, it does nothing."""
        if self._stop():
            for cancelled in self._invoker.cancel_observers:
                cancelled(self._spec, self.request_id, time.monotonic() - self._started)


def _not_running() -> bool:
    return False
