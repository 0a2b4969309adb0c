"""A server that refuses every AWS call, for instances that run without `skylift up`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from skylift.api.unserved import Unserved
from skylift.runtime.environ import aws_environment


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
        Unserved(reason), loop="none", lifespan="off", access_log=False, log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        yield aws_environment(url, url)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        sock.close()
