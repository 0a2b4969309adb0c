"""The HTTP side of metrics: the scrape endpoint, and the middleware counting requests."""

from __future__ import annotations

import time
from collections.abc import Awaitable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from skylift.asgi_types import Asgi, Message, Receive, Scope, Send
from skylift.engine.state import State
from skylift.observe.metrics import Metrics
from skylift.queues.errors import QueueError
from skylift.sources.async_invocations import store_name

# The gateway puts the matched route here (or "aws:SERVICE"); unmatched requests have none.
ROUTE_KEY = "skylift.route"
UNMATCHED = "(unmatched)"


class MetricsEndpoint:
    """`GET /_skylift/metrics` (and `/metrics`): Prometheus' text format, or OpenMetrics
    when the scraper asks for it."""

    def __init__(self, metrics: Metrics, state: State | None) -> None:
        self.metrics = metrics
        self.state = state
        self.registry: CollectorRegistry = metrics.registry()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        while message.get("more_body"):
            message = await receive()
        if scope["method"] not in ("GET", "HEAD"):
            await _send(send, 405, b"text/plain", b"use GET\n")
            return
        await self.refresh()
        accept = next((v.decode() for k, v in scope["headers"] if k == b"accept"), "")
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        await _send(send, 200, content_type.encode(), b"" if scope["method"] == "HEAD" else body)

    async def refresh(self) -> None:
        """Read the queue backends' depths (they are async; rendering is not)."""
        if self.state is None:
            return
        node = self.state.node
        self.metrics.backend = node.health if node is not None else None
        if node is not None and not node.health.up:
            # Redis is away: answer now with the outage, not after every call's retries.
            self.metrics.queues, self.metrics.async_events = {}, {}
            return
        try:
            await self._read_depths()
        except Exception as exc:
            from redis.exceptions import RedisError

            if node is None or not isinstance(exc, (RedisError, OSError)):
                raise  # skylift's own failure, not an outage: logged as the error it is
            # Redis went away since the last probe: the scrape still answers, with that.
            node.health.failed(exc)
            self.metrics.queues, self.metrics.async_events = {}, {}

    async def _read_depths(self) -> None:
        assert self.state is not None
        queues = {}
        for name in await self.state.queues.list_queues():
            try:
                queues[name] = await self.state.queues.stats(name)
            except QueueError:  # deleted between the listing and now
                continue
        self.metrics.queues = queues
        pending = {}
        for function in self.metrics.pools:
            try:
                pending[function] = await self.state.pending.stats(store_name(function))
            except QueueError:
                continue
        self.metrics.async_events = pending


class HttpMetrics:
    """ASGI middleware: counts each request by route, method and status, and times it."""

    def __init__(self, app: Asgi, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        counted = _Counted(send)
        try:
            await self.app(scope, receive, counted)
        finally:
            self.metrics.http(
                scope.get(ROUTE_KEY, UNMATCHED),
                scope["method"],
                counted.status,
                time.perf_counter() - started,
            )


class _Counted:
    """`send`, noting the response's status on the way. Not a coroutine function: it
    hands back the wrapped `send`'s awaitable, so no coroutine is added per message."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500  # what the client sees if the app fails before answering

    def __call__(self, message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        return self.send(message)


async def _send(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
