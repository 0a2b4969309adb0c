"""The Redis server the Redis tests use: 127.0.0.1:6379 (or SKYLIFT_TEST_REDIS_URL).

Each test gets its own key prefix, deleted afterwards. Without a server the tests skip,
except under CI=true, where they fail: CI must run them (.ci/run starts redis-server).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

URL = os.environ.get("SKYLIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def available() -> bool:
    parts = urlsplit(URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


def require() -> None:
    if available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"no Redis server answers at {URL}; CI must provide one (see .ci/run)")
    pytest.skip(f"no Redis server at {URL}")


def clean(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test Redis, deleted with everything under it afterwards."""
    require()
    prefix = f"skylift-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    clean(prefix)
