"""Serve a platform over HTTP: uvicorn (httptools + uvloop) in front of the gateway."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable

import uvicorn

from skylift.engine.platform import Platform
from skylift.gateway.asgi import Gateway
from skylift.gateway.protocol import CasePreservingHttpTools
from skylift.loader import Target
from skylift.sources.http import Router


def build_config(app: Gateway, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",  # we own the loop (uvloop, installed by `run`)
        http=CasePreservingHttpTools,
        lifespan="off",
        access_log=False,
        server_header=False,
        log_level="warning",
        # Lambda-style callers hold connections open; keep them across bursts.
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=64 * 1024,
    )


async def serve(
    target: Target,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    on_ready: Callable[[Platform, Router, int], None] | None = None,
) -> None:
    """Load `target`, then serve it until cancelled or interrupted."""
    platform = await Platform.start(target)
    # Long-lived startup objects never need collecting again, and a request makes
    # short-lived cycles rarely: fewer, cheaper collections trim the latency tail.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        router = Router(platform.specs.values())
        server = uvicorn.Server(build_config(Gateway(router, platform.invoker), host, port))
        serving = asyncio.ensure_future(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.005)
        if server.started and on_ready is not None:
            # The real port, when asked for port 0.
            bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
            on_ready(platform, router, bound)
        await serving
        if not server.started:
            raise OSError(f"could not listen on {host}:{port}: is the port in use?")
    finally:
        await platform.close()


def run(coro_factory: Callable[[], object]) -> None:
    """Run a coroutine on uvloop when available (it is the faster loop)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        asyncio.run(coro_factory())  # type: ignore[arg-type]
        return
    if sys.version_info >= (3, 12):  # pragma: no cover
        uvloop.run(coro_factory())
    else:
        uvloop.install()
        asyncio.run(coro_factory())  # type: ignore[arg-type]
