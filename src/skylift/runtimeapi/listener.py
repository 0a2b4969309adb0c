"""The Runtime API's listening socket and the connections it accepted.

Not `loop.create_server`: on asyncio's own loop (3.11), a connection accepted in the loop
turn that closes the server reaches `Server._attach` after the close, fails its assertion
and leaves its socket open for the garbage collector (a ResourceWarning). Accepting by hand
and handing each socket to `loop.connect_accepted_socket` keeps every accepted socket
owned by someone: the listener until its transport exists, the connection after.
`wait_closed` then waits until all of them are closed, so a loop can end right after.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from skylift.runtimeapi.connection import Connection

_ACCEPT_RETRY = 1.0  # seconds without accepting after running out of descriptors


class Listener:
    """Accepts on 127.0.0.1:`port`; `close` closes the socket and every connection."""

    def __init__(self, factory: Callable[[Listener], Connection], host: str) -> None:
        self._factory = factory
        self._loop = asyncio.get_running_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self.closed = False
        self._live: set[Connection] = set()
        # Sockets accepted whose transport is being made, by the task making it.
        self._landing: dict[asyncio.Task[object], socket.socket] = {}
        self._watch()

    def _watch(self) -> None:
        if not self.closed:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    # what connections call (connection.Live)

    def add(self, connection: Connection) -> None:
        self._live.add(connection)

    def discard(self, connection: Connection) -> None:
        self._live.discard(connection)

    # accepting

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError:
                # Out of descriptors: the socket stays readable, so stop watching it for a
                # second rather than spin (as asyncio's own server does).
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(_ACCEPT_RETRY, self._watch)
                return
            conn.setblocking(False)
            landing = self._loop.create_task(
                self._loop.connect_accepted_socket(lambda: self._factory(self), conn)
            )
            self._landing[landing] = conn
            landing.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[object]) -> None:
        conn = self._landing.pop(task)
        if task.cancelled() or task.exception() is not None:
            conn.close()  # no transport took it over

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        for connection in list(self._live):
            connection.close()
        # Those still landing close themselves on arrival (Connection.connection_made).

    async def wait_closed(self, limit: float = 1.0) -> None:
        """After `close`, wait (at most `limit` s) until every accepted socket is closed."""
        deadline = time.monotonic() + limit
        while (self._live or self._landing) and time.monotonic() < deadline:
            await asyncio.sleep(0)
