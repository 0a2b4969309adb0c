"""One HTTP/1.1 connection of the front (`front.py`): httptools (llhttp) parses,
`front_request.py` decides what each request is for, this module answers in order and
keeps the connection's deadlines.

A function route's request is read whole, then `Gateway.dispatch` runs it, and its
response goes out in one write. Anything else (the AWS APIs, the control API, metrics,
docs, 404s, refusals) goes to the ASGI gateway through `AsgiCycle` (`front_asgi.py`).
Requests pipelined behind a running one wait their turn (reading pauses meanwhile), so
responses leave in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any, cast

import httptools

from skylift.gateway.front_asgi import AsgiCycle
from skylift.gateway.front_function import (
    BAD_REQUEST,
    SERVER_ERROR,
    TIMED_OUT,
    TOO_LARGE_HEAD,
    UNAVAILABLE,
    FunctionCycle,
)
from skylift.gateway.front_request import BadTarget, new_cycle
from skylift.gateway.front_types import Cycle, Server

logger = logging.getLogger("skylift.gateway")
BODY_HIGH_WATER = 256 * 1024  # an ASGI app's unread body past which reading pauses


class Connection(asyncio.Protocol):
    """The parser's callbacks, the order of answers, and flow control for one client."""

    def __init__(self, front: Server[Connection]) -> None:
        self.front = front
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.current: FunctionCycle | AsgiCycle | None = None  # the one answering now
        self.parsing: FunctionCycle | AsgiCycle | None = None  # the one being read
        self.waiting: deque[FunctionCycle | AsgiCycle] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self.in_head = False
        self.head_size = 0  # exact, from the parser's callbacks
        self.head_read = 0  # bytes read in later packets while a head is incomplete
        self.head_since: float | None = None  # when an incomplete head was first seen
        self.idle_since: float | None = None
        self.body_since: float | None = None  # the last progress of a body being read
        self.write_paused = False
        self.body_paused = False
        self.reading = True
        self.drained: asyncio.Event | None = None
        self.failed: bytes | None = None  # a refusal sent once the running answers are out
        self._url = b""
        self._names: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._max_head = front.limits.max_head

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        front = self.front
        if len(front.connections) >= front.limits.max_connections:
            # Over the cap: answer at once rather than let accept fail for everyone.
            self.transport.write(UNAVAILABLE)
            self.transport.close()
            self.closing = True
            front.refuse()
            return
        front.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.client = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        self.idle_since = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.front.connections.discard(self)
        for cycle in (self.parsing, self.current, *self.waiting):
            if cycle is not None:
                cycle.disconnected()
        self.waiting.clear()
        if self.drained is not None:
            self.drained.set()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.idle_since = None
        was_in_head = self.in_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(BAD_REQUEST)  # skylift serves no WebSockets or CONNECT tunnels
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self.fail(TOO_LARGE_HEAD)
            elif isinstance(exc.__context__, BadTarget):
                self.fail(BAD_REQUEST)  # the client's mistake: no traceback for it
            elif isinstance(exc, httptools.HttpParserCallbackError):
                logger.error("reading a request failed", exc_info=exc.__context__)
                self.fail(SERVER_ERROR)
            else:
                self.fail(BAD_REQUEST)
            return
        if self.in_head:
            # The head's bytes so far: at least those of the packets after the one it
            # began in (llhttp does not say where in a packet a message begins).
            if was_in_head:
                self.head_read += len(data)
                if self.head_read > self.front.limits.max_head:
                    self.fail(TOO_LARGE_HEAD)
                    return
            if self.head_since is None:
                self.head_since = time.monotonic()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()
        if self.drained is not None:
            self.drained.set()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.in_head = True
        self.head_size = 0
        self.head_read = 0
        self._url = b""
        self._names = []
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > self._max_head:
            raise _HeadTooLarge
        self._names.append(name)
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_since = None
        if self.head_size > self.front.limits.max_head:
            raise _HeadTooLarge
        cycle = new_cycle(self, self._url, self._names, self._headers)
        self.parsing = cycle
        self.body_since = time.monotonic()
        if self.current is None:
            self.current = cycle
            cycle.start()
        else:
            self.waiting.append(cycle)
            self._flow()

    def on_body(self, body: bytes) -> None:
        self.body_since = time.monotonic()
        cycle = self.parsing
        if cycle is not None:
            cycle.on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.parsing
        self.parsing = None
        self.body_since = None
        if cycle is not None:
            cycle.on_complete()
        if self.current is None and not self.waiting:
            # Answered early (a refusal before its body was read): the body is now read
            # off and discarded, so the connection is idle from here.
            self.idle_since = time.monotonic()

    # what a cycle calls

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the client reads slower than the app writes (backpressure)."""
        while self.write_paused and not self.transport_gone():
            self.drained = self.drained or asyncio.Event()
            self.drained.clear()
            await self.drained.wait()

    def transport_gone(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def body_buffered(self, size: int) -> None:
        """An ASGI cycle's unread body: pause reading above the high-water mark."""
        paused = size > BODY_HIGH_WATER
        if paused != self.body_paused:
            self.body_paused = paused
            self._flow()

    def finish(self, cycle: Cycle) -> None:
        """`cycle` answered: close, or start the next pipelined request, or wait idle."""
        if self.current is not cycle:
            return
        self.current = None
        if self.failed is not None:  # a refusal waits behind the answers before it
            if cycle.keep_alive and self.waiting and not self.front.stopping:
                self.current = self.waiting.popleft()
                self.current.start()
                return
            if cycle.keep_alive:
                self.write(self.failed)
            self.close()
            return
        if not cycle.keep_alive or self.closing or self.front.stopping:
            self.close()
            return
        if (
            cycle is self.parsing
            and isinstance(cycle, AsgiCycle)
            and cycle.continue_wanted
            and not cycle.continue_sent
        ):  # the client waits for a 100 that will not come: its body never will
            self.close()
            return
        self.body_paused = False
        if self.head_since is not None:
            self.head_since = time.monotonic()  # its deadline runs from now on
        if self.body_since is not None:
            self.body_since = time.monotonic()
        if self.waiting:
            self.current = self.waiting.popleft()
            self.current.start()
        else:
            self.idle_since = time.monotonic()
        self._flow()

    def fail(self, response: bytes) -> None:
        """Answer a request the front refuses, and close (the stream is unusable). Answers
        to the requests before it that are running or waiting go out first; a request
        whose own body is what failed is not answered."""
        self.closing = True
        self.in_head = False
        self.head_since = self.body_since = None
        parsing, current = self.parsing, self.current
        self.parsing = None
        if parsing is not None and parsing is not current:
            if parsing in self.waiting:
                self.waiting.remove(parsing)  # cut off mid-body: it never runs
            parsing.disconnected()
        if self.transport is None or self.transport.is_closing():
            return
        if current is not None and current is not parsing:
            self.failed = response
            self.reading = False
            self.transport.pause_reading()
            return
        if current is None:
            self.transport.write(response)
        self.transport.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def check(self, now: float) -> None:
        """The sweep's look at this connection: its head deadline, its body deadline (the
        same span between two reads of a body), its idle timeout."""
        limits = self.front.limits
        if (
            self.head_since is not None
            and self.current is None  # a head pipelined behind a running request waits
            and now - self.head_since > limits.head_timeout
        ):
            self.fail(TIMED_OUT)
        elif (
            self.body_since is not None
            and self.reading  # not while the front itself holds the body back
            and (self.current is None or self.current is self.parsing)
            and not self._awaiting_continue()  # the client waits for our 100 to send it
            and now - self.body_since > limits.head_timeout
        ):
            parsing = self.parsing
            if not (isinstance(parsing, AsgiCycle) and parsing.started):
                self.write(TIMED_OUT)  # nothing answered it yet
            self.close()
        elif (
            self.idle_since is not None
            and self.current is None
            and now - self.idle_since > limits.keep_alive
        ):
            self.close()

    def continued(self) -> None:
        """A 100 Continue went out: the body's deadline runs from now."""
        if self.body_since is not None:
            self.body_since = time.monotonic()

    def cancel_running(self) -> None:
        """The shutdown's deadline passed: stop the invocation answering now if it runs
        with no task (a task's is cancelled with the task)."""
        current = self.current
        if isinstance(current, FunctionCycle) and current.running is not None:
            running, current.running = current.running, None
            running.cancel()

    def shutdown(self) -> None:
        """The server is stopping: close when idle, else after the current answer."""
        if self.current is None and not self.waiting:
            self.close()

    # internals

    def _awaiting_continue(self) -> bool:
        parsing = self.parsing
        return (
            isinstance(parsing, AsgiCycle) and parsing.continue_wanted and not parsing.continue_sent
        )

    def _flow(self) -> None:
        read = not (self.waiting or self.write_paused or self.body_paused)
        if read != self.reading and self.transport is not None and not self.closing:
            self.reading = read
            if read:
                if self.body_since is not None:
                    self.body_since = time.monotonic()  # the client was held back till now
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the head is over the limit (431)."""
