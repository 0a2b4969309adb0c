"""A server that refuses every AWS call, for instances that run without `skylift up`.

Its port is open from the start, but uvicorn and the refusing app are imported only when
the first connection arrives (it waits in the listen backlog meanwhile): most functions
`skylift invoke` runs make no AWS call, and those imports cost more than the rest of a
small invocation (~50 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from skylift.runtime.environ import aws_environment

if TYPE_CHECKING:
    import uvicorn


def _server(reason: str, stopping: asyncio.Event) -> uvicorn.Server:
    """A uvicorn server of refusals that stops as soon as `stopping` is set."""
    import uvicorn

    from skylift.api.unserved import Unserved

    class Server(uvicorn.Server):
        """uvicorn's own loop looks at `should_exit` every 0.1 s and its shutdown sleeps
        0.1 s, which `skylift invoke` would wait for every run: this one does not."""

        async def main_loop(self) -> None:
            await stopping.wait()

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

    config = uvicorn.Config(
        Unserved(reason),
        loop="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
        ws="none",  # no WebSocket protocol to load (wsproto, websockets: ~100 ms)
    )
    return Server(config)


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
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    started: list[tuple[uvicorn.Server, asyncio.Future[None]]] = []

    def first_connection() -> None:
        loop.remove_reader(sock.fileno())
        server = _server(reason, stopping)
        started.append((server, asyncio.ensure_future(server.serve(sockets=[sock]))))

    loop.add_reader(sock.fileno(), first_connection)
    try:
        yield aws_environment(url, url)
    finally:
        if started:
            server, serving = started[0]
            server.should_exit = True
            stopping.set()
            with contextlib.suppress(Exception):
                await serving
        else:
            loop.remove_reader(sock.fileno())
        sock.close()
