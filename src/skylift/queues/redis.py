"""RedisQueues: SQS-style queues in Redis, shared by every skylift node pointed at it.

Each operation is one Lua script (``redis_scripts.py``; the key layout is in
``redis_lua.py``), so it is atomic across nodes: two nodes never both receive one message
inside its visibility window, and a FIFO group has at most one receiver at a time. Times
come from the Redis server's clock.

Durability is Redis's: an acknowledged call is in Redis's memory, and survives a Redis
restart as far as its persistence settings promise (``appendonly yes`` with
``appendfsync always`` loses nothing acknowledged; ``everysec`` up to a second; no
persistence, everything). See docs/scaling.md.

Long polls wait with ``BLPOP`` on the queue's wake list, one connection each, so a message
sent on any node wakes one waiting receiver on any node; they also look again every
``poll_interval`` seconds and when the next delayed or in-flight message is due.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from skylift.account import ACCOUNT_ID
from skylift.queues import redis_received, redis_scripts
from skylift.queues.attributes import QueueSettings, check_tags, first_difference
from skylift.queues.errors import (
    InvalidParameterValue,
    PurgeQueueInProgress,
    QueueBackendClosed,
    QueueError,
    QueueNameExists,
)
from skylift.queues.messages import PreparedMessage, check_batch_size, check_receive, prepare_batch
from skylift.queues.protocol import (
    OutgoingMessage,
    QueueInfo,
    QueueStats,
    ReceivedMessage,
    SendResult,
)
from skylift.queues.receipts import Receipt
from skylift.queues.redis_catalog import Catalog, StoredQueue
from skylift.queues.redis_polling import Waits
from skylift.queues.redis_received import FIELDS, receipt, received_message, send_values
from skylift.queues.redis_url import split_url

_MAX_VISIBILITY = 43_200
_PURGE_INTERVAL_MS = 60_000
DEFAULT_PREFIX = "skylift:"
# A reply slower than this means Redis is gone; a long poll blocks in shorter slices.
_SOCKET_TIMEOUT = 10.0
_WAIT_SLICE = 5.0
# What a claim returns: the messages, the server's time, when the next one is due (or -1).
Claimed = tuple[list[ReceivedMessage], int, int]


class RedisQueues:
    """The Redis queue backend. Example: ``RedisQueues("redis://127.0.0.1:6379/0")``.

    ``prefix`` starts every key, so several states can share one database; a ``prefix``
    query parameter in the URL (``redis://host:6379/0?prefix=app1:``) sets it too.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        region: str = "us-east-1",
        account_id: str = ACCOUNT_ID,
        poll_interval: float = 1.0,
    ) -> None:
        url, url_prefix = split_url(url)
        self.prefix = prefix or url_prefix or DEFAULT_PREFIX
        self._redis: Redis = Redis.from_url(url, socket_timeout=_SOCKET_TIMEOUT)
        self._catalog = Catalog(self._redis, self.prefix, region, account_id)
        self._poll_interval = poll_interval
        self._closed = False
        self._waits = Waits(self._redis, self.prefix)
        register = self._redis.register_script
        self._send = register(redis_scripts.SEND)
        self._claim_script = register(redis_scripts.CLAIM)
        self._delete = register(redis_scripts.DELETE)
        self._change_visibility = register(redis_scripts.CHANGE_VISIBILITY)
        self._stats = register(redis_scripts.STATS)
        self._purge = register(redis_scripts.PURGE)
        self._redrive = register(redis_scripts.REDRIVE)
        self._key: bytes | None = None  # receipt handles' signing secret, shared by nodes

    async def _receipt_key(self) -> bytes:
        """The secret every node signs receipt handles with (made once, kept in Redis)."""
        if self._key is None:
            name = self.prefix + "receipt-key"
            await self._redis.set(name, secrets.token_bytes(32), nx=True)
            stored = await self._redis.get(name)
            assert stored is not None
            self._key = stored if isinstance(stored, bytes) else stored.encode("latin-1")
        return self._key

    # -- queues -------------------------------------------------------------------------

    async def create_queue(
        self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str] | None = None
    ) -> QueueInfo:
        settings = QueueSettings.create(name, attributes)
        if tags:
            check_tags(tags)
        catalog = self._open()
        queue = await catalog.find(name, fresh=True)
        if queue is None:
            await catalog.check_redrive(name, settings)
            queue = await catalog.create(name, settings, tags)
        # Another node may have created it first: then its attributes must match ours.
        different = first_difference(queue.settings, attributes)
        if different is not None:
            raise QueueNameExists(
                "A queue already exists with the same name and a different value for "
                f"attribute {different}",
                hint=f"use SetQueueAttributes to change {name!r}, or pick another name",
            )
        return catalog.info(queue)

    async def delete_queue(self, name: str) -> None:
        catalog = self._open()
        await catalog.delete(await catalog.get(name, fresh=True))

    async def get_queue(self, name: str) -> QueueInfo:
        catalog = self._open()
        return catalog.info(await catalog.get(name, fresh=True))

    async def list_queues(self, prefix: str = "") -> list[str]:
        return [name for name in await self._open().names() if name.startswith(prefix)]

    async def get_attributes(self, name: str) -> dict[str, str]:
        catalog = self._open()
        queue = await catalog.get(name, fresh=True)
        reply = await self._call(name, self._count)
        visible, in_flight, delayed = (int(v) for v in reply[2:5])
        return {
            "QueueArn": catalog.arn(name),
            "ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesNotVisible": str(in_flight),
            "ApproximateNumberOfMessagesDelayed": str(delayed),
            "CreatedTimestamp": str(int(queue.created)),
            "LastModifiedTimestamp": str(int(queue.modified)),
            **queue.settings.to_attributes(),
        }

    async def set_attributes(self, name: str, attributes: Mapping[str, str]) -> None:
        catalog = self._open()
        while True:  # optimistic: recompute if another node changed the queue meanwhile
            queue = await catalog.get(name, fresh=True)
            settings = queue.settings.update(attributes)
            await catalog.check_redrive(name, settings)
            if await catalog.update(queue, settings):
                return

    async def tag_queue(self, name: str, tags: Mapping[str, str]) -> None:
        check_tags(tags)
        catalog = self._open()
        await catalog.tag(await catalog.get(name, fresh=True), tags)

    async def untag_queue(self, name: str, keys: Sequence[str]) -> None:
        catalog = self._open()
        await catalog.untag(await catalog.get(name, fresh=True), keys)

    async def list_tags(self, name: str) -> dict[str, str]:
        catalog = self._open()
        return await catalog.tags(await catalog.get(name, fresh=True))

    # -- messages -----------------------------------------------------------------------

    async def send(self, name: str, entries: Sequence[OutgoingMessage]) -> list[SendResult]:
        prepared: list[PreparedMessage] = []

        async def send(queue: StoredQueue) -> Any:
            # Validated against the settings the script checks, so a delay or size limit
            # another node just changed applies.
            prepared[:] = prepare_batch(entries, queue.settings)
            scope = queue.settings.stored.get("DeduplicationScope")
            by_group = "1" if scope == "messageGroup" else "0"
            values = send_values(prepared)
            return await self._send(args=self._args(queue, by_group, len(prepared), *values))

        reply = await self._call(name, send)
        results = []
        for index, message in enumerate(prepared):
            message_id, sequence = reply[1 + index * 2], reply[2 + index * 2]
            results.append(
                SendResult(
                    message_id.decode(),
                    message.md5_of_body,
                    message.md5_of_message_attributes,
                    f"{int(sequence):020d}" if sequence not in (b"", "") else None,
                    message.md5_of_system_attributes,
                )
            )
        return results

    async def receive(
        self,
        name: str,
        *,
        max_messages: int = 1,
        visibility_timeout: int | None = None,
        wait_seconds: int | None = None,
        for_mapping: bool = False,
    ) -> list[ReceivedMessage]:
        check_receive(max_messages, visibility_timeout, wait_seconds, for_mapping)
        queue = await self._open().get(name)
        wait = queue.settings.receive_wait_seconds if wait_seconds is None else wait_seconds
        deadline = time.monotonic() + wait
        while True:
            claim = self._claim(name, max_messages, visibility_timeout)
            messages, now, next_visible = await self._waits.finish(claim, self._give_back(name))
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            timeout = min(remaining, self._poll_interval)
            if next_visible >= 0:
                timeout = min(timeout, (next_visible - now) / 1000)
            await self._waits.wait(queue.id, min(max(timeout, 0.01), _WAIT_SLICE))
            if self._closed:
                return []

    async def delete(self, name: str, receipt_handles: Sequence[str]) -> list[QueueError | None]:
        check_batch_size(len(receipt_handles))
        queue = await self._open().get(name)
        key = await self._receipt_key()
        results: list[QueueError | None] = [None] * len(receipt_handles)
        valid: list[tuple[int, Receipt]] = []
        for index, handle in enumerate(receipt_handles):
            try:
                valid.append((index, receipt(queue.id, queue.name, handle, key)))
            except QueueError as invalid:
                invalid.entry = index
                results[index] = invalid
        if valid:
            values = [v for _, r in valid for v in (r.row_id, r.message_id, str(r.token))]
            reply = await self._call(
                name, lambda q: self._delete(args=self._args(q, len(valid), *values))
            )
            for (index, _), status in zip(valid, reply[1:], strict=True):
                if status == b"expired":
                    results[index] = redis_received.expired(receipt_handles[index], index)
        return results

    async def change_visibility(self, name: str, receipt_handle: str, timeout: int) -> None:
        check_receive(1, timeout, None)
        queue = await self._open().get(name)
        found = receipt(queue.id, name, receipt_handle, await self._receipt_key())
        args = (found.row_id, found.message_id, timeout, _MAX_VISIBILITY)
        [status] = await self._call(
            name, lambda q: self._change_visibility(args=self._args(q, *args))
        )
        if status == b"missing":
            raise InvalidParameterValue(
                f"Value {receipt_handle} for parameter ReceiptHandle is invalid. Reason: "
                "Message does not exist or is not available for visibility timeout change.",
                hint="the message was deleted",
            )
        if status == b"limit":
            raise InvalidParameterValue(
                f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                "VisibilityTimeout for the message is beyond the limit [43200 seconds]",
                hint="the limit counts from when the message was received; process it "
                "faster or send it again",
            )

    async def purge(self, name: str) -> None:
        reply = await self._call(
            name, lambda q: self._purge(args=self._args(q, _PURGE_INTERVAL_MS))
        )
        if reply[0] == b"busy":
            raise PurgeQueueInProgress(
                f"Only one PurgeQueue operation on {name} is allowed every 60 seconds.",
                hint=f"try again in {int(reply[1]) / 1000:.0f} s",
            )

    async def stats(self, name: str) -> QueueStats:
        reply = await self._call(name, self._count)
        now, visible, in_flight, delayed, oldest, depth = (int(v) for v in reply[1:7])
        queue = await self._open().get(name)
        policy = queue.settings.redrive_policy
        return QueueStats(
            visible,
            in_flight,
            delayed,
            None if oldest < 0 else max(0.0, (now - oldest) / 1000),
            dead_letter_queue=policy.dead_letter_queue if policy and depth >= 0 else None,
            dead_letter_depth=depth if policy and depth >= 0 else None,
        )

    async def redrive(
        self, name: str, destination: str | None = None, limit: int | None = None
    ) -> int:
        catalog = self._open()
        dlq = await catalog.get(name, fresh=True)
        target = await catalog.get(destination, fresh=True) if destination is not None else None
        if target is not None and target.settings.fifo != dlq.settings.fifo:
            raise InvalidParameterValue(
                "The source queue and the destination queue must be of the same type.",
                hint=f"{name!r} and {destination!r} must both be FIFO or both standard",
            )
        if not await catalog.is_dead_letter_queue(dlq):
            raise InvalidParameterValue(
                "Source queue must be configured as a Dead Letter Queue.",
                hint=f"make {name!r} the deadLetterTargetArn of some queue's RedrivePolicy",
            )
        to = target.id if target is not None else ""
        count = -1 if limit is None else limit
        reply = await self._call(name, lambda q: self._redrive(args=self._args(q, to, count)))
        return sum(int(n) for n in reply[2::2])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._waits.close()
        await self._redis.aclose()

    # -- internals ----------------------------------------------------------------------

    async def _claim(self, name: str, limit: int, visibility_timeout: int | None) -> Claimed:
        """Claim up to ``limit`` messages; also the server's time and when the next one is due.

        Claimed messages past the retention period are dropped, and those received more
        than maxReceiveCount times move to the dead-letter queue instead of being returned:
        SQS moves a message on the receive that would exceed the count.
        """
        token = random.getrandbits(63)
        claimed_from: list[StoredQueue] = []

        async def claim(queue: StoredQueue) -> Any:
            claimed_from.append(queue)
            settings = queue.settings
            vt = settings.visibility_timeout if visibility_timeout is None else visibility_timeout
            policy = settings.redrive_policy
            dlq = policy.dead_letter_queue if policy else ""
            receives = policy.max_receive_count if policy else 0
            args = (limit, vt * 1000, settings.retention_seconds * 1000, dlq, receives, token)
            return await self._claim_script(args=self._args(queue, *args))

        reply = await self._call(name, claim)
        now, next_visible = int(reply[1]), int(reply[2])
        queue_id, account, arn = claimed_from[-1].id, self._catalog.account_id, self._catalog.arn
        key = await self._receipt_key()
        messages = [
            received_message(reply[start : start + FIELDS], int(queue_id), token, account, arn, key)
            for start in range(3, len(reply), FIELDS)
        ]
        return messages, now, next_visible

    async def _count(self, queue: StoredQueue) -> Any:
        policy = queue.settings.redrive_policy
        dlq = policy.dead_letter_queue if policy else ""
        return await self._stats(
            args=self._args(queue, queue.settings.retention_seconds * 1000, dlq)
        )

    def _give_back(self, name: str) -> Callable[[Claimed], Awaitable[None]]:
        async def give_back(claimed: Claimed) -> None:
            for message in claimed[0]:
                try:
                    await self.change_visibility(name, message.receipt_handle, 0)
                except (QueueError, RedisError):
                    pass  # deleted meanwhile, or Redis is gone: it comes back by itself

        return give_back

    async def _call(self, name: str, run: Callable[[StoredQueue], Awaitable[Any]]) -> list[Any]:
        """Run a message script on the queue's current settings, reloading them once if
        another node changed them (the script answers ``stale``)."""
        catalog = self._open()
        for _ in range(3):
            queue = await catalog.get(name)
            reply: list[Any] = await run(queue)
            if reply[0] not in (b"stale", b"gone"):
                return reply
            catalog.forget(name)
            if reply[0] == b"gone":
                await catalog.get(name, fresh=True)  # QueueDoesNotExist, or it was re-created
        raise QueueError("The queue's attributes keep changing; try again.")

    def _args(self, queue: StoredQueue, *values: object) -> list[Any]:
        return [self.prefix, queue.id, queue.version, *values]

    def _open(self) -> Catalog:
        if self._closed:
            raise QueueBackendClosed(
                "This RedisQueues was closed; open a new one on the same URL to go on."
            )
        return self._catalog
