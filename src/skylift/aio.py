"""Running skylift's coroutines from the command line: uvloop, and SIGTERM as Ctrl-C.

Kept apart from `gateway.server` (which imports the whole server) so that commands that
only load an app, such as `skylift invoke`, start fast.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any


def run(coro_factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine on uvloop (the faster loop; a dependency on Linux).

    SIGTERM (how Kubernetes and process managers stop a server) shuts down as Ctrl-C
    does: while serving, the front drains connections on either; before and after, the
    signal must become an exception so the platform still closes (zygotes, workers,
    state) rather than dying.
    """
    import uvloop

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    uvloop.install()
    asyncio.run(coro_factory())
