"""A function route's request on the front: read whole, dispatched by
`Gateway.dispatch`, answered with status line, headers and body in one write. Also the
front's own canned refusals (400, 408, 431, 500, 503)."""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

from skylift.events.http import HttpRequest, HttpResponse
from skylift.gateway.asgi import MAX_BODY, too_large
from skylift.gateway.front_asgi import reason
from skylift.gateway.front_types import Link

if TYPE_CHECKING:
    from skylift.engine.invoker import Soon
    from skylift.events.http import RouteMatch
    from skylift.gateway.asgi import Prepared
    from skylift.sources.http import Target

    Matched = tuple[Target, RouteMatch]
    # A request's head: method, raw path, raw query, headers, source IP, protocol, host.
    Head = tuple[str, str, str, list[tuple[str, str]], str, str, str]

logger = logging.getLogger("skylift.gateway")
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
MAX_NAMES = 1024  # response header names remembered as sendable; past it, forgotten
# The status lines sent so far, and the header names found sendable (what goes on the
# wire before the value): most responses repeat both.
_STATUS_LINES: dict[int, bytes] = {}
_NAMES: dict[str, bytes] = {}
INTERNAL_ERROR = HttpResponse(
    500, [("Content-Type", "application/json")], b'{"message":"Internal Server Error"}'
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def canned(status: int, message: str) -> bytes:
    """A complete response that closes the connection, for the front's own refusals."""
    body = b'{"message":"%s"}' % message.encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        % (
            status,
            message.encode(),
            len(body),
        )
        + b"connection: close\r\n\r\n"
        + body
    )


BAD_REQUEST = canned(400, "Bad Request")
TIMED_OUT = canned(408, "Request Timeout")
TOO_LARGE_HEAD = canned(431, "Request Header Fields Too Large")
SERVER_ERROR = canned(500, "Internal Server Error")
UNAVAILABLE = canned(503, "Service Unavailable")


class FunctionCycle:
    """A function route's request: its body is buffered, then dispatched whole."""

    __slots__ = (
        "body",
        "complete",
        "conn",
        "continue_wanted",
        "head",
        "keep_alive",
        "matched",
        "method",
        "request",
        "running",
        "size",
        "started",
    )

    def __init__(self, conn: Link, matched: Matched, head: Head) -> None:
        self.conn = conn
        self.matched = matched
        self.head = head
        self.method = head[0]
        self.request: HttpRequest | None = None  # once its body is complete
        self.body: list[bytes] = []
        self.size = 0  # -1: over API Gateway's payload limit
        self.complete = False
        self.keep_alive = True
        self.continue_wanted = False
        self.started = 0.0
        # Its invocation when it runs with no task (a shutdown's deadline cancels it).
        self.running: Soon | None = None

    def start(self) -> None:
        if self.size < 0:
            self.refuse()
        elif self.complete:
            self.conn.front.run_soon(self)
        elif self.continue_wanted:
            self.conn.write(CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        if self.size < 0:
            return
        self.size += len(chunk)
        if self.size > MAX_BODY:
            self.body.clear()
            self.size = -1
            if self.conn.current is self:
                self.refuse()
            return
        self.body.append(chunk)

    def refuse(self) -> None:
        """413, before the body is read further: the connection cannot be reused."""
        method = self.method
        response = render(too_large(self.matched[0]), method == "HEAD", False, self.conn.front.date)
        self.conn.write(response)
        self.conn.front.record(self.matched[0].route.path, method, 413, time.perf_counter())
        self.conn.close()  # the rest of its body is not read: the stream is unusable

    def on_complete(self) -> None:
        self.complete = True
        if self.conn.current is self and self.size >= 0:
            self.conn.front.run_soon(self)

    def disconnected(self) -> None:
        pass  # an incomplete request never runs; a running one finishes unseen

    def go(self) -> None:
        """Run the request: from the parser's callback to the instance's and back, with
        no task, when no admission is needed and an instance is idle; else in a task."""
        conn = self.conn
        front = conn.front
        self.started = time.perf_counter()
        method, raw_path, raw_query, headers, source_ip, protocol, host = self.head
        chunks = self.body
        self.request = request = HttpRequest(
            method,
            raw_path,
            raw_query,
            headers,
            chunks[0] if len(chunks) == 1 else b"".join(chunks),
            source_ip,
            protocol,
            host,
        )
        try:
            prepared = front.gateway.prepare(self.matched, request, front.port)
            if isinstance(prepared, HttpResponse):
                self.respond(prepared)
                return
            if prepared is not None:
                slow = prepared

                def later() -> None:  # waited in the line in vain: the slow path
                    self.running = None
                    conn.spawn(self.run(slow))

                self.running = front.gateway.invoke_soon(prepared, self.respond, later)
                if self.running is not None:
                    return
        except Exception:
            logger.exception("serving %s %s failed", request.method, request.raw_path)
            self.respond(INTERNAL_ERROR)
            return
        conn.spawn(self.run(prepared))

    async def run(self, prepared: Prepared | None) -> None:
        """The slow path: admission first (`prepared` is None), or waiting for an
        instance or a slot."""
        gateway = self.conn.front.gateway
        request = self.request
        assert request is not None
        try:
            if prepared is None:
                response = await gateway.dispatch(self.matched, request, self.conn.front.port)
            else:
                response = await gateway.invoke(prepared)
        except Exception:
            logger.exception("serving %s %s failed", request.method, request.raw_path)
            response = INTERNAL_ERROR
        self.respond(response)

    def respond(self, response: HttpResponse) -> None:
        self.running = None
        conn = self.conn
        front = conn.front
        method = self.method
        conn.write(render(response, method == "HEAD", self.keep_alive, front.date))
        front.record(self.matched[0].route.path, method, response.status, self.started)
        conn.finish(self)


def render(response: HttpResponse, head: bool, keep_alive: bool, date: bytes) -> bytes:
    """Status line, headers and body as one buffer (API Gateway always sends a length).
    A header HTTP cannot carry (a line break in its value, a name that is no token) makes
    the response a 500, as a malformed proxy response is."""
    status = response.status
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, reason(status))
    parts = [line, date]
    for name, value in response.headers:
        prefix = _NAMES.get(name)
        if prefix is None:
            if name.lower() in _FRAMING:
                continue  # the gateway frames the body itself
            if _TOKEN.match(name) is None:
                return _unsendable(name, head, keep_alive, date)
            if len(_NAMES) >= MAX_NAMES:
                _NAMES.clear()
            prefix = _NAMES[name] = name.encode() + b": "
        if "\r" in value or "\n" in value or "\0" in value:
            return _unsendable(name, head, keep_alive, date)
        parts.append(prefix + value.encode() + b"\r\n")
    body = response.body
    if status in (204, 304) or status < 200:
        body = b""
    else:
        parts.append(b"content-length: %d\r\n" % len(body))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head:
        parts.append(body)
    return b"".join(parts)


def _unsendable(name: str, head: bool, keep_alive: bool, date: bytes) -> bytes:
    logger.error("a function's response header %r cannot be sent: answered 500", name)
    return render(INTERNAL_ERROR, head, keep_alive, date)
