"""skylift's HTTP/1.1 front: asyncio (uvloop) and httptools (llhttp), in place of uvicorn.

Function routes go straight from the parser to `Gateway.dispatch` and back in one write;
everything else reaches the ASGI gateway (`connection.py`, `front_asgi.py`). It keeps
what uvicorn gave (keep-alive, pipelining, `Expect: 100-continue`, chunked bodies both
ways, HEAD, backpressure, a graceful shutdown) and adds the limits uvicorn lacked:

- request line and headers at most `max_head` bytes (API Gateway's 10,240): 431;
- a whole head within `head_timeout` seconds of its first byte: 408, then close;
- a body that makes no progress for `head_timeout` seconds (while the front reads it):
  408 (unless its answer began), then close;
- idle keep-alive connections closed after `keep_alive` seconds;
- at most `max_connections` open at once, below the file-descriptor limit: beyond it a
  new connection gets 503 at once, rather than `accept` failing for everyone.

Timeouts are checked by one sweep over the connections, a few times a second, rather
than a timer per request.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import resource
import socket
import time

from skylift.asgi_types import Asgi
from skylift.gateway.asgi import Gateway
from skylift.gateway.connection import Connection
from skylift.gateway.front_decided import Decided
from skylift.gateway.front_types import Limits, Ready
from skylift.observe.metrics import HTTP_BATCH, Metrics

logger = logging.getLogger("skylift.gateway")
FD_RESERVE = 256  # descriptors kept for instances, zygotes, state files and logs


def connection_cap(requested: int | None = None) -> int:
    """How many connections may be open at once: below RLIMIT_NOFILE's soft limit by a
    reserve for everything else the server opens, and at most `requested`."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    reserve = max(FD_RESERVE, soft // 4)
    cap = max(16, soft - reserve) if soft != resource.RLIM_INFINITY else 65_536
    return min(cap, requested) if requested else cap


class Front:
    """The server: its connections, their sweep, and an orderly stop."""

    def __init__(
        self,
        gateway: Gateway,
        app: Asgi,
        limits: Limits,
        *,
        metrics: Metrics | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.gateway = gateway
        self.app = app  # the ASGI gateway, as observed (metrics): all but function routes
        self.limits = limits
        self.metrics = metrics
        self.noted = metrics.noted if metrics is not None else None  # HTTP requests
        self.host = host
        self.port = port
        self.connections: set[Connection] = set()
        self.decided = Decided()  # function routes' requests decided so far (front_request)
        self.stopping = False
        self.refused = 0  # connections answered 503 (over the cap)
        self.now = time.monotonic()
        self.date = b""
        self._server: asyncio.base_events.Server | None = None
        self._ready: list[Ready] = []  # complete function requests, not yet run
        self._sweeper: asyncio.Task[None] | None = None
        self._tick()

    def run_soon(self, cycle: Ready) -> None:
        """Run a complete function request once this turn of the loop has read what it
        can, with the others that became ready in it: one callback for them all. Woken
        per request from inside the read callbacks, workers would take the CPU from the
        supervisor while it still has requests to read (measured: about 15% more
        supervisor CPU per request under load)."""
        ready = self._ready
        ready.append(cycle)
        if len(ready) == 1:
            asyncio.get_running_loop().call_soon(self._run_ready)

    def _run_ready(self) -> None:
        ready, self._ready = self._ready, []
        for cycle in ready:
            cycle.go()

    def record(self, route: str, method: str, status: int, started: float) -> None:
        # `Metrics.http` inline: one append on the request path, counted in batches.
        noted = self.noted
        if noted is not None:
            noted.append((route, method, status, time.perf_counter() - started))
            if len(noted) >= HTTP_BATCH:
                self.metrics.count_http()  # type: ignore[union-attr]

    def refuse(self) -> None:
        self.refused += 1
        if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
            logger.warning(
                "%d connections refused with 503: over the cap of %d open connections "
                "(--max-connections, and the file-descriptor limit: ulimit -n)",
                self.refused,
                self.limits.max_connections,
            )

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.port = sock.getsockname()[1]
        self._server = await loop.create_server(
            lambda: Connection(self), sock=sock, backlog=2048, start_serving=True
        )
        self._sweeper = loop.create_task(self._sweep())

    async def shutdown(self) -> None:
        """Stop accepting; close idle connections; let in-flight requests finish for up to
        `shutdown_timeout` seconds; then close what is left."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.shutdown()
        deadline = time.monotonic() + self.limits.shutdown_timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            for task in list(conn.tasks):
                task.cancel()
            conn.cancel_running()
            if conn.transport is not None:
                conn.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await asyncio.sleep(0)  # let cancelled requests unwind before the platform closes

    def _tick(self) -> None:
        self.now = time.monotonic()
        self.date = b"date: %s\r\n" % email.utils.formatdate(usegmt=True).encode()

    async def _sweep(self) -> None:
        limits = self.limits
        interval = min(1.0, max(0.05, min(limits.head_timeout, limits.keep_alive) / 4))
        while True:
            await asyncio.sleep(interval)
            self._tick()
            for conn in list(self.connections):
                conn.check(self.now)
