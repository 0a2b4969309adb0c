"""Asynchronous invocations (`InvocationType=Event`), as Lambda runs them.

An event is stored durably (its own queue per function in `.skylift/async.db`, out of
the SQS API's sight) before the 202 is sent, so a restart loses none. A runner per
function takes events and invokes the function:

- on a function error (or a crash, or a timeout) it retries up to `max_retries` times
  (0-2), after about 1 minute and then 2 minutes, as Lambda does (`fast_retries`: 1 s,
  2 s, for development);
- a throttled invocation is retried with backoff, without counting as an attempt;
- an event older than `max_event_age` is dropped;
- on success the record goes to `on_success`; when retries are exhausted or the event
  is too old, the record goes to `on_failure` and the raw event to the dead-letter
  queue (with Lambda's RequestID / ErrorCode / ErrorMessage attributes).

Delivery is at least once: a retry is stored before the event it replaces is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from typing import Any

from skylift.engine.instance import InvocationResult
from skylift.engine.invoker import Invoker
from skylift.errors import OutOfSpace, SkyliftError, Throttled
from skylift.events.invocation_record import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    SUCCESS,
    invocation_record,
)
from skylift.queues.errors import QueueDoesNotExist
from skylift.queues.protocol import MessageAttributeValue, OutgoingMessage, QueueBackend
from skylift.queues.protocol import ReceivedMessage as Stored
from skylift.runtime.environ import function_arn
from skylift.sources.background import Background, backoff
from skylift.spec import FunctionSpec
from skylift.triggers import Destination

logger = logging.getLogger("skylift.async")
RETRY_DELAYS = (60, 120)  # seconds before the first and second retry, as Lambda
FAST_RETRY_DELAYS = (1, 2)
THROTTLE_BACKOFF = (1, 2, 4, 8, 16, 32, 60, 120, 300)
MAX_PARALLEL = 64  # events of one function run at once without a reserved concurrency


def store_name(function: str) -> str:
    return f"async-{function}"


class AsyncInvocations:
    def __init__(
        self,
        specs: dict[str, FunctionSpec],
        invoker: Invoker,
        store: QueueBackend,
        queues: QueueBackend,
        *,
        region: str,
        fast_retries: bool = False,
    ) -> None:
        self.specs = specs
        self.invoker = invoker
        self.store = store  # the events waiting to run: internal
        self.queues = queues  # the app's queues: destinations and dead-letter queues
        self.region = region
        self.delays = FAST_RETRY_DELAYS if fast_retries else RETRY_DELAYS
        self.outcomes: dict[str, int] = {}
        self._background = Background()
        self._runners: dict[str, asyncio.Task[None]] = {}

    async def open(self) -> None:
        for spec in self.specs.values():
            await self._open(spec)

    async def _open(self, spec: FunctionSpec) -> None:
        """The store queue of `spec`'s events, with its visibility timeout."""
        # In flight while the function runs: at most its timeout, plus a cold start
        # (up to 10 s for a Runtime API process), plus waits for a slot. A running server
        # always deletes or re-stores the event before this runs out; if it dies, the
        # next start returns the event at once (`State.open`), as Lambda returns an
        # event cut off by a system error to its queue.
        visibility = str(min(43200, int(spec.timeout) * 2 + 30))
        name = store_name(spec.name)
        try:
            await self.store.get_queue(name)
        except QueueDoesNotExist:
            await self.store.create_queue(name, {"VisibilityTimeout": visibility})
        else:
            await self.store.set_attributes(name, {"VisibilityTimeout": visibility})

    async def enqueue(
        self,
        function: str,
        payload: bytes,
        request_id: str | None = None,
        *,
        tenant_id: str | None = None,
        trigger: str = "event",
    ) -> str:
        """Store an event for `function` (for tenant `tenant_id`, if given); returns its
        request id once it is durable. `trigger`: what invoked it, for its metrics (a
        schedule, an upload, else an asynchronous Invoke)."""
        request_id = request_id or str(uuid.uuid4())
        body = {
            "requestId": request_id,
            "payload": payload.decode(),
            "enqueued": time.time(),
            "attempts": 0,
            "throttles": 0,
        }
        if tenant_id is not None:
            body["tenantId"] = tenant_id
        if trigger != "event":
            body["trigger"] = trigger
        await self._store(function, body, delay=0)
        return request_id

    async def _store(self, function: str, body: dict[str, Any], delay: int) -> None:
        await self.store.send(store_name(function), [OutgoingMessage(json.dumps(body), delay)])

    def start(self) -> None:
        for name in self.specs:
            self._runners[name] = self._background.spawn(self._run(name))

    async def apply(self, specs: dict[str, FunctionSpec]) -> None:
        """Serve these functions from now on (a reload added, removed or changed some).
        A removed function's stored events stay stored; a runner stopped while it held
        one lets it return after its visibility timeout."""
        added = [name for name in specs if name not in self.specs]
        removed = [name for name in self.specs if name not in specs]
        self.specs = dict(specs)
        for name in removed:
            runner = self._runners.pop(name, None)
            if runner is not None:
                runner.cancel()
        for name in added:
            await self._open(specs[name])
            self._runners[name] = self._background.spawn(self._run(name))

    async def _run(self, function: str) -> None:
        # Take an event only when the function has room to run it: a backlog waits in
        # the store, not as tasks in memory or as invocations bound to be throttled.
        # The room is the function's reserved concurrency as it is now (`skylift scale`).
        running = 0
        failures = 0  # in a row: the store may be away (a Redis restarting)
        freed = asyncio.Event()

        def done(_: object) -> None:
            nonlocal running
            running -= 1
            freed.set()

        while True:
            reserved = self.invoker.reserved(function)
            if running >= (MAX_PARALLEL if reserved is None else reserved):
                freed.clear()
                # A run ending frees room; so may a raised limit: look again each second.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(freed.wait(), 1.0)
                continue
            running += 1
            try:
                batch = await self.store.receive(
                    store_name(function), max_messages=1, wait_seconds=20
                )
            except Exception as exc:  # the runner must outlive any one failure
                done(None)
                failures += 1
                log = logger.error if failures == 1 else logger.debug  # once per outage
                log("async invocations of %s: %s", function, exc)
                await asyncio.sleep(backoff(failures, first=1.0))
                continue
            failures = 0
            if not batch:
                done(None)
                continue
            task = self._background.spawn(self._handle_logged(function, batch[0]))
            task.add_done_callback(done)

    async def _handle_logged(self, function: str, message: Stored) -> None:
        try:
            await self._handle(function, message)
        except OutOfSpace as exc:  # said in one line: the store says which disk, once a minute
            logger.warning(
                "async invocation of %s could not be completed (%s); the event runs again "
                "after its visibility timeout",
                function,
                exc,
            )
        except Exception:  # the event returns after its visibility timeout and runs again
            logger.exception("async invocation of %s could not be completed", function)

    async def _handle(self, function: str, message: Stored) -> None:
        spec = self.specs[function]
        config = spec.async_config
        body = json.loads(message.body)
        payload = body["payload"].encode()
        if time.time() - body["enqueued"] > config.max_event_age:
            await self._failed(spec, body, EVENT_AGE_EXCEEDED, None)
            await self._done(function, message, EVENT_AGE_EXCEEDED)
            return
        try:
            result = await self.invoker.invoke(
                function,
                payload,
                request_id=body["requestId"],
                tenant_id=body.get("tenantId"),
                trigger=body.get("trigger", "event"),
            )
        except Throttled:
            step = THROTTLE_BACKOFF[min(body["throttles"], len(THROTTLE_BACKOFF) - 1)]
            # Jitter, so events throttled together do not all come back together.
            delay = max(1, round(step * random.uniform(0.5, 1.5)))
            await self._store(function, {**body, "throttles": body["throttles"] + 1}, delay)
            await self._done(function, message, "throttled")
            return
        except Exception as exc:  # the platform failed: an attempt, as a function error
            logger.error("async invocation of %s failed: %s", function, exc)
            result = None
        attempts = body["attempts"] + 1
        if result is not None and result.error is None:
            await self._deliver(spec, config.on_success, body, SUCCESS, attempts, result)
            await self._done(function, message, SUCCESS)
            return
        if attempts <= config.max_retries:
            delay = self.delays[min(attempts, len(self.delays)) - 1]
            await self._store(function, {**body, "attempts": attempts}, delay)
            await self._done(function, message, "retried")
            return
        await self._failed(spec, {**body, "attempts": attempts}, RETRIES_EXHAUSTED, result)
        await self._done(function, message, RETRIES_EXHAUSTED)

    async def _failed(
        self,
        spec: FunctionSpec,
        body: dict[str, Any],
        condition: str,
        result: InvocationResult | None,
    ) -> None:
        config = spec.async_config
        await self._deliver(spec, config.on_failure, body, condition, body["attempts"], result)
        if config.dead_letter_queue:
            error = b"" if result is None else result.payload
            attributes: dict[str, MessageAttributeValue] = {
                "RequestID": {"DataType": "String", "StringValue": body["requestId"]},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": _error_message(error) or condition,
                },
            }
            await self._send(
                config.dead_letter_queue, OutgoingMessage(body["payload"], None, attributes)
            )

    async def _deliver(
        self,
        spec: FunctionSpec,
        destination: Destination | None,
        body: dict[str, Any],
        condition: str,
        count: int,
        result: InvocationResult | None,
    ) -> None:
        if destination is None:
            return
        record = invocation_record(
            function_arn=function_arn(spec.name, self.region),
            request_id=body["requestId"],
            condition=condition,
            invoke_count=count,
            request_payload=body["payload"].encode(),
            response_payload=None if result is None else result.payload,
            function_error=None if result is None else result.error,
        )
        text = json.dumps(record)
        if destination.kind == "queue":
            await self._send(destination.name, OutgoingMessage(text))
        else:
            await self.enqueue(destination.name, text.encode())

    async def _send(self, queue: str, message: OutgoingMessage) -> None:
        try:
            await self.queues.send(queue, [message])
        except SkyliftError as exc:  # e.g. the queue was deleted: say so, do not loop
            logger.error("could not deliver to queue %s: %s", queue, exc)

    async def _done(self, function: str, message: Stored, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        await self.store.delete(store_name(function), [message.receipt_handle])

    async def stop(self) -> None:
        await self._background.stop()


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("errorMessage", ""))[:1024]
    except (ValueError, AttributeError):
        return payload[:1024].decode("utf-8", "replace")
