"""Running skylift's coroutines from the command line: uvloop, and SIGTERM as Ctrl-C.

Kept apart from `gateway.server` (which imports the whole server) so that commands that
only load an app, such as `skylift invoke`, start fast.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any


def run(coro_factory: Callable[[], Coroutine[Any, Any, None]], *, fast_loop: bool = True) -> None:
    """Run a coroutine on uvloop (the faster loop; a dependency on Linux), or with
    `fast_loop=False` on asyncio's own: a command that runs a few operations and exits
    (`skylift invoke`) would wait longer for uvloop's import than it gains.

    SIGTERM (how Kubernetes and process managers stop a server) shuts down as Ctrl-C
    does: while serving, the front drains connections on either; before and after, the
    signal must become an exception so the platform still closes (zygotes, workers,
    state) rather than dying.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if fast_loop:
        import uvloop

        uvloop.install()
    asyncio.run(coro_factory())
