"""Invocations in: pick the function's pool, borrow an instance, run, give it back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from skylift.engine.instance import InvocationResult
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


class Invoker:
    def __init__(self, pools: dict[str, Pool]) -> None:
        self.pools = pools
        self.record: Record = ignore  # throttles are events `skylift describe` lists
        # Called with every result, whatever triggered it: the console, stored logs, metrics.
        self.observers: list[Observer] = []
        self.cancel_observers: list[CancelObserver] = []
        # The terminal of `skylift up` shows output as it is printed.
        self.output_observers: list[OutputObserver] = []

    def _sink(self, spec: FunctionSpec, request_id: str) -> Callable[[bytes], None]:
        def sink(data: bytes) -> None:
            for observer in self.output_observers:
                observer(spec, request_id, data)

        return sink

    def reserved(self, function: str) -> int | None:
        """The function's reserved concurrency now (`skylift scale` changes it), if any."""
        pool = self.pools.get(function)
        return pool.limit if pool is not None and pool.reserved else None

    async def invoke(
        self,
        function: str,
        event: bytes,
        *,
        request_id: str | None = None,
        client_context: dict[str, Any] | None = None,
        trace_id: str | None = None,
        tenant_id: str | None = None,
    ) -> InvocationResult:
        """Run `function` on `event` (JSON bytes) and return what it produced.

        Function errors, timeouts and crashes come back in the result, never raised.
        Every invocation gets an X-Ray trace header (`_X_AMZN_TRACE_ID`), as on Lambda:
        `trace_id` carries one in (an SQS message's `AWSTraceHeader`), else a new one.
        """
        pool = self.pools.get(function)
        if pool is None:
            raise FunctionNotFound(function, list(self.pools))
        if pool.spec.tenant_isolation != (tenant_id is not None):
            raise TenantMismatch(function, pool.spec.tenant_isolation)
        try:
            instance = await pool.acquire(tenant_id)
        except Throttled as exc:
            self.record(function, "Throttled", f"{exc.reason}: limit {exc.limit}")
            raise
        request_id = request_id or str(uuid.uuid4())
        started = time.monotonic()
        try:
            result = await instance.invoke(
                request_id,
                event,
                client_context=client_context,
                trace_id=trace_id or new_trace_id(),
                tenant_id=tenant_id,
                on_output=self._sink(pool.spec, request_id) if self.output_observers else None,
            )
        except asyncio.CancelledError:
            for cancelled in self.cancel_observers:
                cancelled(pool.spec, request_id, time.monotonic() - started)
            raise
        finally:
            pool.release(instance)
        result.event = event  # kept with the log, for `skylift replay`
        for observer in self.observers:
            observer(pool.spec, result, instance)
        return result
