"""The queue records of a RedisQueues state: creation, attributes and tags, cached by name.

A cached record carries the settings version (``ver``) it was read at; every message
script checks it, so a node learns of another node's SetQueueAttributes on its next call
(the script answers ``stale`` and the record is read again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from skylift.queues.attributes import MAX_TAGS, QueueSettings, queue_name_from_arn
from skylift.queues.errors import InvalidAttributeValue, InvalidParameterValue, QueueDoesNotExist
from skylift.queues.protocol import QueueInfo
from skylift.queues.redis_lua import script

_LOAD = script(
    """
local id = redis.call('HGET', P .. 'queues', ARGV[2])
if not id then return {} end
local f = redis.call('HMGET', qkey(id, 'meta'), 'attrs', 'created', 'modified', 'ver')
return {id, f[1], f[2], f[3], f[4]}
"""
)
# ARGV[2]: name; [3]: attributes JSON; [4]: '1' for FIFO; [5]: now (s); [6]: tags JSON or ''.
# Answers {id, attributes, created, modified, ver} of the queue, new or existing.
_CREATE = script(
    """
local name = ARGV[2]
local id = redis.call('HGET', P .. 'queues', name)
if id then
  local f = redis.call('HMGET', qkey(id, 'meta'), 'attrs', 'created', 'modified', 'ver')
  return {id, f[1], f[2], f[3], f[4]}
end
id = tostring(redis.call('INCR', P .. 'queue_seq'))
redis.call('HSET', P .. 'queues', name, id)
redis.call('HSET', qkey(id, 'meta'), 'name', name, 'attrs', ARGV[3], 'fifo', ARGV[4],
  'created', ARGV[5], 'modified', ARGV[5], 'ver', '1', 'seq', 0)
if ARGV[6] ~= '' then
  for key, value in pairs(cjson.decode(ARGV[6])) do
    redis.call('HSET', qkey(id, 'tags'), key, value)
  end
end
return {id, ARGV[3], ARGV[5], ARGV[5], '1'}
"""
)
# ARGV[2]: id; [3]: the version the change was computed from; [4]: attributes; [5]: now.
_UPDATE = script(
    """
local q = ARGV[2]
local bad = check(q, ARGV[3]) if bad then return bad end
redis.call('HSET', qkey(q, 'meta'), 'attrs', ARGV[4], 'modified', ARGV[5])
redis.call('HINCRBY', qkey(q, 'meta'), 'ver', 1)
return 'ok'
"""
)
_DELETE = script(
    """
local q, name = ARGV[2], ARGV[3]
if redis.call('EXISTS', qkey(q, 'meta')) == 0 then return 'gone' end
clear_messages(q)
redis.call('UNLINK', qkey(q, 'meta'), qkey(q, 'tags'))
if redis.call('HGET', P .. 'queues', name) == q then redis.call('HDEL', P .. 'queues', name) end
-- Wake the long polls on it (they end with QueueDoesNotExist); ids are never reused, so the
-- tokens only need to outlive them.
wake(q, WAKE_CAP)
redis.call('PEXPIRE', qkey(q, 'wake'), 30000)
return 'ok'
"""
)
# ARGV[2]: id; [3]: tags JSON; [4]: the most tags a queue may hold. Refused whole.
_TAG = script(
    """
local q = ARGV[2]
if redis.call('EXISTS', qkey(q, 'meta')) == 0 then return 'gone' end
local key = qkey(q, 'tags')
local tags = cjson.decode(ARGV[3])
local count = redis.call('HLEN', key)
for name, _ in pairs(tags) do
  if redis.call('HEXISTS', key, name) == 0 then count = count + 1 end
end
if count > tonumber(ARGV[4]) then return 'too_many' end
for name, value in pairs(tags) do redis.call('HSET', key, name, value) end
return 'ok'
"""
)


@dataclass(frozen=True, slots=True)
class StoredQueue:
    id: str
    name: str
    settings: QueueSettings
    created: float
    modified: float
    version: str


class Catalog:
    def __init__(self, client: Redis, prefix: str, region: str, account_id: str) -> None:
        self.client = client
        self.prefix = prefix
        self.region = region
        self.account_id = account_id
        self._by_name: dict[str, StoredQueue] = {}
        self._load = client.register_script(_LOAD)
        self._create = client.register_script(_CREATE)
        self._update = client.register_script(_UPDATE)
        self._delete = client.register_script(_DELETE)
        self._tag = client.register_script(_TAG)

    async def get(self, name: str, *, fresh: bool = False) -> StoredQueue:
        queue = await self.find(name, fresh=fresh)
        if queue is None:
            raise QueueDoesNotExist(
                "The specified queue does not exist.",
                hint=f"no queue is named {name!r}: create it first, or check the name against "
                "ListQueues",
            )
        return queue

    async def find(self, name: str, *, fresh: bool = False) -> StoredQueue | None:
        queue = None if fresh else self._by_name.get(name)
        if queue is None:
            self._by_name.pop(name, None)
            reply = await self._load(args=[self.prefix, name])
            if not reply:
                return None
            queue = self._by_name[name] = _stored(name, reply)
        return queue

    def forget(self, name: str) -> None:
        self._by_name.pop(name, None)

    async def create(
        self, name: str, settings: QueueSettings, tags: Mapping[str, str] | None
    ) -> StoredQueue:
        """Create the queue, or return the one that exists (maybe made by another node)."""
        reply = await self._create(
            args=[
                self.prefix,
                name,
                _dump(settings),
                "1" if settings.fifo else "0",
                repr(time.time()),
                json.dumps(dict(tags)) if tags else "",
            ]
        )
        queue = self._by_name[name] = _stored(name, reply)
        return queue

    async def update(self, queue: StoredQueue, settings: QueueSettings) -> bool:
        """Store new settings; False when another change came first (read and try again)."""
        reply = await self._update(
            args=[self.prefix, queue.id, queue.version, _dump(settings), repr(time.time())]
        )
        self.forget(queue.name)
        if reply == b"gone":
            raise _missing(queue.name)
        return bool(reply == b"ok")

    async def delete(self, queue: StoredQueue) -> None:
        self.forget(queue.name)
        if await self._delete(args=[self.prefix, queue.id, queue.name]) == b"gone":
            raise _missing(queue.name)

    async def tag(self, queue: StoredQueue, tags: Mapping[str, str]) -> None:
        reply = await self._tag(args=[self.prefix, queue.id, json.dumps(dict(tags)), MAX_TAGS])
        if reply == b"gone":
            raise _missing(queue.name)
        if reply == b"too_many":
            raise InvalidParameterValue(
                f"Too many tags added for queue {queue.name}.",
                hint=f"a queue holds at most {MAX_TAGS} tags; remove some with UntagQueue",
            )

    async def untag(self, queue: StoredQueue, keys: Sequence[str]) -> None:
        if keys:
            await self.client.hdel(self._key(queue, "tags"), *keys)

    async def tags(self, queue: StoredQueue) -> dict[str, str]:
        raw = await self.client.hgetall(self._key(queue, "tags"))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def names(self) -> list[str]:
        return sorted(_text(name) for name in await self.client.hkeys(self.prefix + "queues"))

    async def holds_moved_messages(self, queue: StoredQueue) -> bool:
        return bool(await self.client.hexists(self._key(queue, "meta"), "holds"))

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def info(self, queue: StoredQueue) -> QueueInfo:
        settings = queue.settings
        attributes = settings.to_attributes()
        return QueueInfo(queue.name, self.arn(queue.name), settings.fifo, attributes, queue.created)

    async def check_redrive(self, name: str, settings: QueueSettings) -> None:
        """Raise unless the queue's RedrivePolicy names an existing queue of the same type."""
        policy = settings.redrive_policy
        if policy is None:
            return
        region, account, target = queue_name_from_arn(policy.dead_letter_target_arn)
        dlq = await self.find(target, fresh=True)
        # A queue may be its own dead-letter queue, as in SQS (the count then starts over).
        own = target == name
        reason = hint = None
        if (region, account) != (self.region, self.account_id):
            reason = "Dead-letter target owner should be same as the source."
            hint = f"the dead-letter queue must be in {self.region}, account {self.account_id}"
        elif dlq is None and not own:
            reason = "Dead letter target does not exist."
            hint = f"create queue {target!r} first"
        elif dlq is not None and not own and dlq.settings.fifo != settings.fifo:
            reason = "Dead-letter queue must be same type of queue as the source."
        if reason is not None:
            raise InvalidAttributeValue(
                f"Value {policy.to_json()} for parameter RedrivePolicy is invalid. Reason: "
                f"{reason}",
                hint=hint,
            )

    async def is_dead_letter_queue(self, queue: StoredQueue) -> bool:
        """Whether some queue's RedrivePolicy targets ``queue``, or it holds moved messages."""
        for name in await self.names():
            other = await self.find(name, fresh=True)
            policy = other.settings.redrive_policy if other else None
            if policy is not None and policy.dead_letter_queue == queue.name:
                return True
        return await self.holds_moved_messages(queue)

    def _key(self, queue: StoredQueue, part: str) -> str:
        return f"{self.prefix}q:{queue.id}:{part}"


def _stored(name: str, reply: list[Any]) -> StoredQueue:
    queue_id, attributes, created, modified, version = (
        v.decode() if isinstance(v, bytes) else str(v) for v in reply
    )
    settings = QueueSettings.from_attributes(json.loads(attributes))
    return StoredQueue(queue_id, name, settings, float(created), float(modified), version)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _missing(name: str) -> QueueDoesNotExist:
    return QueueDoesNotExist(
        "The specified queue does not exist.", hint=f"queue {name!r} was deleted meanwhile"
    )


def _dump(settings: QueueSettings) -> str:
    return json.dumps(settings.to_attributes(), separators=(",", ":"))
