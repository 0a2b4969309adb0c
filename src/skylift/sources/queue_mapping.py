"""An SQS event source mapping: poll a queue, invoke the function with batches, delete
what succeeded.

As Lambda does ("Using Lambda with Amazon SQS"): a batch is up to `batch_size` messages,
gathered for at most `max_batching_window` seconds; the invocation is synchronous; on
success the whole batch is deleted; on a function error nothing is deleted, so the
messages come back after their visibility timeout (and go to the dead-letter queue after
`maxReceiveCount`). With `report_batch_item_failures`, a result
`{"batchItemFailures": [{"itemIdentifier": id}]}` keeps only those messages; an
identifier that is empty or not in the batch fails the whole batch.

Pollers scale with the backlog: a full batch starts another poller, up to the mapping's
`max_concurrency`. Only the first poller long-polls; the others poll without waiting and
stop as soon as a batch comes back short, so an idle queue has one waiter, and a send
wakes one poller, not a herd of them.

`pause()` disables the mapping while the server runs (`Enabled: false`, as an alert's
`drain` action does): messages wait in the queue, unread; `resume()` enables it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from skylift.engine.instance import InvocationResult
from skylift.engine.invoker import Invoker
from skylift.errors import SkyliftError
from skylift.events.sqs import sqs_record
from skylift.queues.protocol import QueueBackend, ReceivedMessage
from skylift.runtime.environ import continued_trace
from skylift.sources.background import backoff
from skylift.triggers import QueueTrigger

logger = logging.getLogger("skylift.queues")
DEFAULT_MAX_POLLERS = 20  # without ScalingConfig.MaximumConcurrency; Lambda allows 1000
LONG_POLL_SECONDS = 20
PAUSED_CHECK = 1.0  # seconds between looks at a turned-off function's limit
RECEIVE_MAX = 10  # SQS returns at most 10 messages per ReceiveMessage (and deletes 10)
# The poller is no SQS client: it claims up to this many of a batch in one receive
# (`for_mapping`), where one through the SQS API would take at most 10 at a time.
CLAIM_MAX = 1000
MAX_EVENT = 6 * 1024 * 1024  # Lambda's invocation payload limit: a batch's event stays under


def parts(sizes: list[int], limit: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive runs of `sizes` whose sums stay within `limit` (a
    single size over it runs alone)."""
    found, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and total + size > limit:
            found.append((start, i))
            start, total = i, 0
        total += size
    found.append((start, len(sizes)))
    return found


def failed_items(result: Any, batch: list[ReceivedMessage]) -> set[str] | None:
    """Message ids to keep, from a `batchItemFailures` result; None means all failed."""
    if not isinstance(result, dict):
        return set()  # null, a string, a list: Lambda counts the batch as successful
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids = {m.message_id for m in batch}
    keep: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return None  # an invalid identifier fails the whole batch, as on AWS
        keep.add(identifier)
    return keep


class QueueMapping:
    def __init__(
        self,
        function: str,
        trigger: QueueTrigger,
        queues: QueueBackend,
        invoker: Invoker,
        *,
        queue_arn: str,
        region: str,
    ) -> None:
        self.function = function
        self.trigger = trigger
        self.queues = queues
        self.invoker = invoker
        self.queue_arn = queue_arn
        self.region = region
        self.pollers: set[asyncio.Task[None]] = set()
        self.invocations = 0
        self.failures = 0
        self._mean_size = 0.0  # bytes of a message's record in its event, a moving average
        # Told of each batch's message ids and its invocation's result (None: the
        # invocation did not run, e.g. throttled); `skylift.testing.Client.send` waits here.
        self.batch_observers: list[Callable[[list[str], InvocationResult | None], None]] = []
        self.paused = False
        self._stopping = False

    @property
    def enabled(self) -> bool:
        """Polling (the mapping's State is Enabled): declared enabled and not paused."""
        return self.trigger.enabled and not self.paused

    def pause(self) -> None:
        """Stop taking messages; the invocations under way finish."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    @property
    def max_pollers(self) -> int:
        """The trigger's maximum concurrency, within the function's reserved concurrency
        as it is now (a running server's limits can change); 0 while paused."""
        if self.paused:
            return 0
        most = self.trigger.max_concurrency or DEFAULT_MAX_POLLERS
        reserved = self.invoker.reserved(self.function)
        return most if reserved is None else min(most, reserved)

    def start(self) -> None:
        if self.trigger.enabled:
            self._spawn(primary=True, always=True)

    def _spawn(self, primary: bool = False, always: bool = False) -> None:
        # The primary poller always runs (it waits while the function is turned off).
        if (always or len(self.pollers) < self.max_pollers) and not self._stopping:
            task = asyncio.ensure_future(self._poll(primary))
            self.pollers.add(task)
            task.add_done_callback(lambda t: self._ended(t, primary))

    def _ended(self, task: asyncio.Task[None], primary: bool) -> None:
        self.pollers.discard(task)
        if primary and not self._stopping:  # the mapping must never stop polling
            logger.error(
                "%s: the poller of %s stopped; starting it again", self.function, self.trigger.queue
            )
            self._spawn(primary=True, always=True)

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self.pollers):
            task.cancel()
        for task in list(self.pollers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self, primary: bool) -> None:
        failures = 0  # in a row: the backend may be away (a Redis restarting)
        while not self._stopping:
            if not primary and len(self.pollers) > self.max_pollers:
                return  # the function's reserved concurrency was lowered: scale down
            if self.max_pollers == 0:  # paused, or reserved concurrency 0: messages wait
                await asyncio.sleep(PAUSED_CHECK)
                continue
            try:
                batch = await self._gather(LONG_POLL_SECONDS if primary else 0)
                if batch and self.max_pollers == 0:
                    # Paused or turned off while this poll waited: the messages go back.
                    for message in batch:
                        await self.queues.change_visibility(
                            self.trigger.queue, message.receipt_handle, 0
                        )
                    continue
                full = len(batch) >= min(self.trigger.batch_size, RECEIVE_MAX)
                if full:
                    self._spawn()  # a full batch means a backlog: scale up
                if batch:
                    await self._process_sized(batch)
            except Exception as exc:  # e.g. the queue was deleted under us: keep polling
                failures += 1
                log = logger.error if failures == 1 else logger.debug  # once per outage
                log("%s: polling %s failed: %s", self.function, self.trigger.queue, exc)
                await asyncio.sleep(backoff(failures, first=1.0))
                continue
            failures = 0
            if not full and not primary:
                return  # the backlog is gone: scale down

    async def _gather(self, wait: int) -> list[ReceivedMessage]:
        """One batch: up to batch_size messages within the batching window."""
        size = min(self.trigger.batch_size, self._fitting())
        window = self.trigger.max_batching_window
        batch = await self.queues.receive(
            self.trigger.queue,
            max_messages=min(size, CLAIM_MAX),
            wait_seconds=wait,
            for_mapping=True,
        )
        if not batch or (len(batch) >= size) or window <= 0:
            return batch
        deadline = time.monotonic() + window
        while len(batch) < size and sum(len(m.body) for m in batch) < MAX_EVENT:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = await self.queues.receive(
                self.trigger.queue,
                max_messages=min(size - len(batch), CLAIM_MAX),
                wait_seconds=max(1, min(LONG_POLL_SECONDS, int(left))),
                for_mapping=True,
            )
            batch.extend(more)
        return batch

    def _fitting(self) -> int:
        """How many messages of the sizes seen so far fit one event (at least 10; 10 until
        a batch was seen: a first claim of large messages stays small)."""
        return max(RECEIVE_MAX, int(MAX_EVENT // self._mean_size) if self._mean_size else 0)

    def _observe(self, batch: list[ReceivedMessage], result: InvocationResult | None) -> None:
        if self.batch_observers:
            ids = [m.message_id for m in batch]
            for observer in self.batch_observers:
                observer(ids, result)

    async def _process_sized(self, batch: list[ReceivedMessage]) -> None:
        """As Lambda does, a batch's event stays within the 6 MB payload limit: a claim
        whose event would be larger (large messages and a large BatchSize; `_gather`
        claims fewer once it has seen large ones) is invoked as several batches, one
        after the other, so a poller still runs one invocation at a time (before each,
        the messages still waiting are hidden for another visibility timeout). On a FIFO
        queue a part that fails leaves the rest unprocessed (they return after the
        visibility timeout), so a message group's order holds."""
        records = [sqs_record(m, self.queue_arn, self.region) for m in batch]
        event = orjson.dumps({"Records": records})
        each = len(event) / len(batch)
        self._mean_size += (each - self._mean_size) / (4 if self._mean_size else 1)
        if len(event) <= MAX_EVENT or len(batch) == 1:
            await self._process(batch, event)
            return
        fifo = self.trigger.queue.endswith(".fifo")
        timeout = 0
        for start, end in parts([len(orjson.dumps(r)) + 1 for r in records], MAX_EVENT - 20):
            if start:  # the parts still waiting stay hidden a visibility timeout from now
                timeout = timeout or int(
                    (await self.queues.get_attributes(self.trigger.queue))["VisibilityTimeout"]
                )
                for message in batch[start:]:
                    await self.queues.change_visibility(
                        self.trigger.queue, message.receipt_handle, timeout
                    )
            part = orjson.dumps({"Records": records[start:end]})
            if not await self._process(batch[start:end], part) and fifo:
                return

    async def _process(self, batch: list[ReceivedMessage], event: bytes) -> bool:
        self.invocations += 1
        try:
            # As on Lambda, a message sent with a trace header continues that trace.
            trace = continued_trace(batch[0].attributes.get("AWSTraceHeader"))
            result = await self.invoker.invoke(self.function, event, trace_id=trace, trigger="sqs")
        except SkyliftError as exc:  # throttled, or the platform failed: the batch returns
            self._observe(batch, None)
            self.failures += 1
            logger.warning(
                "%s: a batch from %s returns later: %s", self.function, self.trigger.queue, exc
            )
            await asyncio.sleep(1)  # back off, as Lambda's pollers do when throttled
            return False
        self._observe(batch, result)
        if result.error is not None:
            self.failures += 1
            logger.warning(
                "%s failed on a batch of %d from %s; it returns after the visibility timeout: %s",
                self.function,
                len(batch),
                self.trigger.queue,
                result.payload[:300].decode("utf-8", "replace"),
            )
            return False
        keep: set[str] = set()
        if self.trigger.report_batch_item_failures:
            try:
                failed = failed_items(orjson.loads(result.payload), batch)
            except orjson.JSONDecodeError:
                failed = None
            if failed is None:
                self.failures += 1
                logger.warning(
                    "%s returned invalid batchItemFailures; the whole batch of %d returns",
                    self.function,
                    len(batch),
                )
                return False
            keep = failed
        handles = [m.receipt_handle for m in batch if m.message_id not in keep]
        if handles:
            # In batches of 10 (DeleteMessageBatch's most), all at once: they share one
            # transaction of the SQLite backend's group commit.
            queue = self.trigger.queue
            if len(handles) <= RECEIVE_MAX:
                results = [await self.queues.delete(queue, handles)]
            else:
                steps = range(0, len(handles), RECEIVE_MAX)
                results = await asyncio.gather(
                    *(self.queues.delete(queue, handles[i : i + RECEIVE_MAX]) for i in steps)
                )
            errors = [e for result in results for e in result if e]
            if errors:  # the invocation outlived the visibility timeout: it will come back
                logger.warning(
                    "%s: %d messages of %s could not be deleted and will be delivered again "
                    "(raise the queue's visibility timeout above the function's): %s",
                    self.function,
                    len(errors),
                    self.trigger.queue,
                    errors[0],
                )
        return not keep  # a part with failed messages stops a FIFO batch's later parts
