"""Whether this node reaches its Redis: one probe, an outage logged once, and metrics.

Every Redis call of a node retries on its own (redis-py reconnects with exponential
backoff, up to ten tries) and the node's pollers back off between failed polls; this
probe only watches. It PINGs every `INTERVAL` seconds while Redis answers; after a failure
it tries again after 0.1 s, then twice as long each time, up to 5 s (`backoff`), until
Redis answers again. The outage is logged when it starts and when it ends (how long it
lasted), not on every failed call, and `/metrics` shows it:
``skylift_state_backend_up`` (1 or 0), ``skylift_state_backend_errors_total`` (failed
probes) and ``skylift_state_backend_outages_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from skylift.queues.redis_url import shown
from skylift.sources.background import backoff

logger = logging.getLogger("skylift.cluster")
INTERVAL = 1.0  # seconds between probes while Redis answers
MAX_BACKOFF = 5.0  # as `backoff`'s


class BackendHealth:
    """This node's view of its state backend (`url`, without skylift's prefix), kept by a
    background task from `start` to `stop`."""

    def __init__(self, url: str, *, interval: float = INTERVAL) -> None:
        self.shown_url = shown(url)
        self.interval = interval
        self.up = True
        self.errors = 0  # failed probes since the start
        self.outages = 0
        # Its own client, without redis-py's retries: a probe fails at once, not after ten.
        self._redis = Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        self._failures = 0  # in a row
        self._down_since = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self._redis.ping()
            except Exception as exc:  # ConnectionError, TimeoutError, a loading Redis...
                self.failed(exc)
                await asyncio.sleep(backoff(self._failures))
                continue
            self.answered()
            await asyncio.sleep(self.interval)

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        self._failures += 1
        if self.up:
            self.up = False
            self.outages += 1
            self._down_since = time.monotonic()
            logger.error(
                "state backend: Redis at %s is unreachable (%s); retrying with backoff up "
                "to %.0f s. Queue calls fail meanwhile (the SQS API answers 500), triggers "
                "and schedules wait",
                self.shown_url,
                exc,
                MAX_BACKOFF,
            )

    def answered(self) -> None:
        self._failures = 0
        if not self.up:
            self.up = True
            logger.warning(
                "state backend: Redis at %s answers again after %.1f s",
                self.shown_url,
                time.monotonic() - self._down_since,
            )
