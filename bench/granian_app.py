"""skylift's gateway served by granian instead of uvicorn, for `bench/http_bench.py`.

    granian --interface asgi --loop uvloop --workers 1 --working-dir bench granian_app:app

The platform starts in the ASGI lifespan, inside granian's event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skylift.engine.platform import Platform
from skylift.gateway.asgi import Gateway
from skylift.loader import resolve_target
from skylift.sources.http import Router

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "make-change"


class LifespanGateway:
    def __init__(self) -> None:
        self.gateway: Gateway | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            platform = await Platform.start(resolve_target(str(EXAMPLE)))
            self.gateway = Gateway(Router(platform.specs.values()), platform.invoker)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await platform.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.gateway is not None
        await self.gateway(scope, receive, send)


app = LifespanGateway()
