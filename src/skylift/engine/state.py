"""What an app keeps between runs, under `.skylift/` beside it: queues in one SQLite
database (WAL) and objects in a folder per bucket. Declared queues and buckets are
created here at startup when missing, and brought to their declared attributes when
they exist (as a deploy would). With a Redis URL, the queues and the asynchronous
events live in Redis instead, shared by every node (`node` is this one's handle)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from skylift.engine import state_guard
from skylift.queues.errors import QueueDoesNotExist
from skylift.queues.protocol import QueueBackend
from skylift.queues.sqlite import SqliteQueues
from skylift.runtime.environ import ACCOUNT_ID
from skylift.spec import Resources
from skylift.storage.directory import DirectoryStore
from skylift.storage.errors import BucketAlreadyOwnedByYou
from skylift.storage.opening import open_store
from skylift.storage.protocol import ObjectStore

if TYPE_CHECKING:
    from skylift.cluster.node import Node

logger = logging.getLogger("skylift.state")
# Set only when a queue is created: SQS refuses to change them afterwards.
_CREATE_ONLY = frozenset({"FifoQueue"})


class State:
    def __init__(
        self,
        directory: Path,
        region: str,
        url: str | None = None,
        objects: Path | str | None = None,
    ) -> None:
        self.directory = directory
        self.region = region
        # `--state redis://...`: the app's queues live in Redis, shared by every node.
        self.url = url
        self.queues: QueueBackend
        # Asynchronous invocations waiting to run: internal, so apart from the app's queues.
        self.pending: QueueBackend
        self.node: Node | None = None
        if url is not None:
            from skylift.cluster.node import Node, async_prefix  # redis: 18 MiB
            from skylift.queues.redis import RedisQueues

            self.queues = RedisQueues(url, region=region, account_id=ACCOUNT_ID)
            # An event accepted by any node runs on any node, once per attempt.
            self.pending = RedisQueues(
                url, prefix=async_prefix(url), region=region, account_id=ACCOUNT_ID
            )
            self.node = Node(url)
        else:
            self.queues = SqliteQueues(
                directory / "queues.db", region=region, account_id=ACCOUNT_ID
            )
            self.pending = SqliteQueues(
                directory / "async.db", region=region, account_id=ACCOUNT_ID
            )
        # `--objects DIR`: buckets in a folder every node shares (its writes lock across
        # them); `--objects s3://...`: in an external S3-compatible store (storage.opening).
        self.objects: ObjectStore = (
            DirectoryStore(directory / "objects")
            if objects is None
            else open_store(objects, state=directory)
        )

    @classmethod
    def open(
        cls,
        directory: Path,
        region: str,
        url: str | None = None,
        objects: Path | str | None = None,
    ) -> State:
        """Check the databases (`state_guard`: DamagedState if one was lost), then open.

        With `url` (Redis) the queues and async events live there: no database is checked.
        """
        directory.mkdir(parents=True, exist_ok=True)
        databases = state_guard.DATABASES if url is None else ()
        for name in databases:
            state_guard.check(directory, name)
        state = cls(directory, region, url, objects)
        for name in databases:
            state_guard.record(directory, name)
        if not isinstance(state.pending, SqliteQueues):
            # Other nodes may be running the events in flight now: those of a node that
            # died come back after their visibility timeout, as any SQS message does.
            return state
        # One server owns the state: an async event in flight now was cut off by the last
        # one's crash or stop. As Lambda does after a system error, it goes back to its
        # queue and runs again at once, without counting as a retry.
        resumed = state.pending.release_in_flight()
        if resumed:
            logger.warning(
                "skylift: %d asynchronous event%s cut off by the last stop will run again",
                resumed,
                "s" * (resumed != 1),
            )
        return state

    async def ensure(self, resources: Resources) -> None:
        """Create the declared buckets and queues that do not exist yet."""
        for bucket in resources.buckets:
            try:
                await self.objects.create_bucket(bucket)
            except BucketAlreadyOwnedByYou:
                pass
        await self._ensure_queues(resources.queues)

    async def _ensure_queues(self, queues: Mapping[str, Mapping[str, str]]) -> None:
        # Redrive policies name other queues: create every queue first, then set them.
        for name, attributes in queues.items():
            plain = {k: v for k, v in attributes.items() if k != "RedrivePolicy"}
            try:
                await self.queues.get_queue(name)
            except QueueDoesNotExist:
                await self.queues.create_queue(name, plain)
                continue
            changeable = {k: v for k, v in plain.items() if k not in _CREATE_ONLY}
            if changeable:
                await self.queues.set_attributes(name, changeable)
        for name, attributes in queues.items():
            policy = attributes.get("RedrivePolicy")
            if policy:
                await self.queues.set_attributes(name, {"RedrivePolicy": _with_arn(policy, self)})

    def queue_arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{name}"

    async def close(self) -> None:
        await self.queues.close()
        await self.pending.close()
        close_objects = getattr(self.objects, "close", None)  # an external store's spool
        if close_objects is not None:
            close_objects()
        if self.node is not None:
            await self.node.close()


def _with_arn(policy: str, state: State) -> str:
    """A redrive policy whose target is given by name or ARN, as a full local ARN."""
    data = json.loads(policy)
    target = str(data.get("deadLetterTargetArn", ""))
    data["deadLetterTargetArn"] = state.queue_arn(target.rsplit(":", 1)[-1])
    return json.dumps(data)
