"""One skylift node's handle on the shared Redis: its id, a client, and the key prefix."""

from __future__ import annotations

import os
import secrets
import socket

from redis.asyncio import Redis

from skylift.cluster.health import BackendHealth
from skylift.queues.redis import DEFAULT_PREFIX
from skylift.queues.redis_url import split_url

# A reply slower than this means Redis is gone (as the queue backend's).
_SOCKET_TIMEOUT = 10.0


def async_prefix(url: str) -> str:
    """Where a state's asynchronous events live: their own queues, out of the SQS API's
    sight. Example: ``async_prefix("redis://h:6379/0?prefix=app1:")`` is ``"app1:async:"``."""
    return (split_url(url)[1] or DEFAULT_PREFIX) + "async:"


class Node:
    """This process as a member of the cluster sharing `url`'s Redis and prefix.

    The id is unique per process run (host, pid and a random part), so a restarted node is
    a new member and cannot mistake an old lease of its predecessor's for its own.
    """

    def __init__(self, url: str) -> None:
        plain, prefix = split_url(url)
        self.prefix = prefix or DEFAULT_PREFIX
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.redis: Redis = Redis.from_url(plain, socket_timeout=_SOCKET_TIMEOUT)
        self.health = BackendHealth(plain)  # started by the server

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def close(self) -> None:
        await self.health.stop()
        await self.redis.aclose()
