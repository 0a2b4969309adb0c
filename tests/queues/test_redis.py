"""RedisQueues: the conformance suite against a real Redis, plus what sharing it promises."""

from __future__ import annotations

import pytest
from conformance import Opener, QueueBackendConformance
from redis_server import URL, redis_prefix

from skylift.queues import QueueBackend
from skylift.queues.redis import RedisQueues

__all__ = ["redis_prefix"]  # a fixture, used by name


class TestRedisConformance(QueueBackendConformance):
    @pytest.fixture
    def open_backend(self, redis_prefix: str) -> Opener:
        async def open_backend() -> QueueBackend:
            return RedisQueues(URL, prefix=redis_prefix)

        return open_backend
