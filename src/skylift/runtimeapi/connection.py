"""One HTTP/1.1 connection to the Runtime API: httptools parses, this module frames.

A route answers a request with a `Response`, or with a future of one (a long-polled
`/next`). Requests on one connection are answered in order: while a future is pending the
connection stops reading, and requests already parsed (pipelined) wait their turn.
Malformed HTTP gets a 400 and the connection is closed; nothing a client sends can raise
out of `data_received`.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import http
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import httptools

# Bounds on what one request may hold in memory. awslambdaric sends an X-Ray error cause
# header of up to 1 MiB, so the header budget is generous; bodies beyond `max_body` are
# counted but not kept (the route answers 413).
MAX_HEAD = 2 << 20


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    body_size: int  # the size the client sent, which is more than len(body) when too large


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


# As RAPID renders it (aws-lambda-runtime-interface-emulator, rapi/rendering).
INTERNAL_ERROR = Response(
    500, b'{"errorMessage":"Internal Server Error","errorType":"InternalServerError"}'
)

Reply = Response | asyncio.Future[Response]
Route = Callable[[Request], Reply]


class _HeadTooLarge(Exception):
    """Raised inside a parser callback when a request's line and headers pass MAX_HEAD."""


def encode(response: Response, keep_alive: bool) -> bytes:
    """The bytes of `response`; header values must not hold CR or LF (ours never do)."""
    reason = http.HTTPStatus(response.status).phrase
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


class Live(Protocol):
    """Where a connection registers while it is open (`listener.Listener`)."""

    closed: bool

    def add(self, connection: Connection) -> None: ...

    def discard(self, connection: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """Parses requests off one socket and writes the routes' answers back in order."""

    def __init__(self, route: Route, live: Live, max_body: int) -> None:
        self._route = route
        self._live = live  # the server's set, so closing the server closes us
        self._max_body = max_body
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._backlog: collections.deque[tuple[Request, bool]] = collections.deque()
        self._waiting: asyncio.Future[Response] | None = None
        self._reset()

    def _reset(self) -> None:
        self._url = bytearray()
        self._headers: dict[str, str] = {}
        self._head_size = 0
        self._body = bytearray()
        self._body_size = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._live.add(self)
        if self._live.closed:  # accepted just before the listener closed
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self)
        self._transport = None
        self._backlog.clear()
        if self._waiting is not None and not self._waiting.done():
            # Tells the server this long poll has nobody to answer any more.
            self._waiting.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            too_large = isinstance(exc.__context__, _HeadTooLarge)
            self._fail(431 if too_large else 400)
        except httptools.HttpParserUpgrade:
            self._fail(400)  # no upgrades (nor CONNECT) on the Runtime API
        except httptools.HttpParserError:
            self._fail(400)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None  # nothing more is read or written

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url  # httptools may deliver the URL in pieces
        self._grow_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow_head(len(name) + len(value))
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        # libcurl (awslambdaric's client) asks before sending a large body; without this
        # answer it would wait a second for one.
        if self._headers.get("expect", "").lower() == "100-continue" and self._transport:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size <= self._max_body:
            self._body += body

    def on_message_complete(self) -> None:
        method = self._parser.get_method().decode("latin-1")
        path = httptools.parse_url(bytes(self._url)).path.decode("latin-1")
        body = bytes(self._body) if self._body_size <= self._max_body else b""
        request = Request(method, path, self._headers, body, self._body_size)
        self._backlog.append((request, self._parser.should_keep_alive()))
        self._serve_backlog()

    # answering

    def _grow_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge()

    def _serve_backlog(self) -> None:
        while self._backlog and self._waiting is None and self._transport is not None:
            request, keep_alive = self._backlog.popleft()
            try:
                reply = self._route(request)
            except Exception:
                reply = INTERNAL_ERROR  # a bug of ours must not take the connection down
            if isinstance(reply, Response):
                self._write(reply, keep_alive)
                continue
            self._waiting = reply
            self._transport.pause_reading()
            reply.add_done_callback(functools.partial(self._answered, keep_alive=keep_alive))

    def _answered(self, fut: asyncio.Future[Response], *, keep_alive: bool) -> None:
        self._waiting = None
        if fut.cancelled() or self._transport is None:
            return
        self._write(INTERNAL_ERROR if fut.exception() else fut.result(), keep_alive)
        if self._transport is not None:
            self._transport.resume_reading()
            self._serve_backlog()

    def _write(self, response: Response, keep_alive: bool) -> None:
        assert self._transport is not None
        self._transport.write(encode(response, keep_alive))
        if not keep_alive:
            self._transport.close()
            self._transport = None

    def _fail(self, status: int) -> None:
        if self._transport is not None:
            body = f"{status} {http.HTTPStatus(status).phrase}".encode()
            self._transport.write(encode(Response(status, body, content_type="text/plain"), False))
            self._transport.close()
            self._transport = None
