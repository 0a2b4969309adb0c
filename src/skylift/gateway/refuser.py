"""A server that refuses every AWS call, for instances that run without `skylift up`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn

from skylift.api.unserved import Unserved
from skylift.runtime.environ import aws_environment


class _Server(uvicorn.Server):
    """Stops as soon as asked: uvicorn's own loop looks at `should_exit` every 0.1 s
    and its shutdown sleeps 0.1 s, which `skylift invoke` would wait for every run."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = asyncio.Event()

    async def main_loop(self) -> None:
        await self.stopping.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Signals are not this helper server's: Ctrl-C goes to `skylift invoke` itself
        # (asyncio cancels its main task), and this server stops with it.
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's waits 0.1 s for connections to notice; these answer at once, and
        # the instances that held them are gone by now.
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for server in self.servers:
            await server.wait_closed()


@contextlib.asynccontextmanager
async def refusing(reason: str) -> AsyncIterator[dict[str, str]]:
    """Serve refusals on a loopback port; yield the instance environment pointing there.

    >>> async with refusing("no server") as environment:  # doctest: +SKIP
    ...     platform = await Platform.start(target, environment=environment)
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        Unserved(reason),
        loop="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
        ws="none",  # no WebSocket protocol to load (wsproto, websockets: ~100 ms)
    )
    server = _Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        yield aws_environment(url, url)
    finally:
        server.should_exit = True
        server.stopping.set()
        with contextlib.suppress(Exception):
            await serving
        sock.close()
