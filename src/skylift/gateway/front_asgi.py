"""The front's adapter to ASGI: the AWS APIs, the control API, metrics and docs stay
ASGI apps, and reach the wire through `AsgiCycle` (one per request).

It streams both ways: the request body as it arrives (reading pauses while the app has
not taken enough of it), the response as the app sends it (chunked when the app gives no
length; the app waits while the client is slow to read). `Expect: 100-continue` is
answered when the app first asks for the body.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus

from skylift.asgi_types import Asgi, Message, Scope
from skylift.gateway.front_types import Link

logger = logging.getLogger("skylift.gateway")
_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


class AsgiCycle:
    """One request handed to an ASGI app."""

    def __init__(self, conn: Link, scope: Scope, app: Asgi) -> None:
        self.conn = conn
        self.scope = scope
        self.app = app
        self.keep_alive = True
        self.continue_wanted = False
        self.continue_sent = False
        self.body: list[bytes] = []
        self.buffered = 0
        self.complete = False  # the whole request body has been read off the wire
        self.delivered = False  # ...and handed to the app
        self.gone = False  # the client disconnected
        self.arrived: asyncio.Event | None = None
        self.started = False  # response headers written
        self.chunked = False
        self.finished = False  # response complete
        self.head = scope["method"] == "HEAD"
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []

    def start(self) -> None:
        self.conn.spawn(self.run())

    def on_body(self, chunk: bytes) -> None:
        if self.finished:
            return  # the app answered without reading it all: discarded
        self.body.append(chunk)
        self.buffered += len(chunk)
        self.conn.body_buffered(self.buffered)
        if self.arrived is not None:
            self.arrived.set()

    def on_complete(self) -> None:
        self.complete = True
        if self.arrived is not None:
            self.arrived.set()

    def disconnected(self) -> None:
        self.gone = True
        if self.arrived is not None:
            self.arrived.set()

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception:
            logger.exception("serving %s %s failed", self.scope["method"], self.scope["path"])
            if not self.started:
                self.conn.write(_ERROR)
            self.keep_alive = False
        else:
            if not self.finished and not self.started:
                logger.error(
                    "%s %s: the app sent no response", self.scope["method"], self.scope["path"]
                )
                self.conn.write(_ERROR)
                self.keep_alive = False
            elif not self.finished:
                self.keep_alive = False  # an unfinished body: the stream cannot be reused
        self.finished = True
        self.conn.finish(self)

    async def receive(self) -> Message:
        if self.delivered:  # as uvicorn: after the whole body, wait for a disconnect
            while not (self.gone or self.finished):
                self.arrived = self.arrived or asyncio.Event()
                self.arrived.clear()
                await self.arrived.wait()
        if self.gone or self.finished:
            return {"type": "http.disconnect"}
        if self.continue_wanted and not self.continue_sent and not self.complete:
            self.continue_sent = True
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.conn.continued()
        while not self.body and not self.complete and not self.gone:
            self.arrived = self.arrived or asyncio.Event()
            self.arrived.clear()
            await self.arrived.wait()
        if self.gone and not self.complete:
            return {"type": "http.disconnect"}
        body = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body = []
        self.buffered = 0
        self.conn.body_buffered(0)
        self.delivered = self.complete
        return {"type": "http.request", "body": body, "more_body": not self.complete}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started or self.status:
                raise RuntimeError("the response has already started")
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
            return
        if kind != "http.response.body":
            return
        if not self.status or self.finished:
            raise RuntimeError("http.response.body before start, or after the last")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        conn = self.conn
        if not self.started:
            self.started = True
            conn.write(self._head(body, more) + (b"" if self.head else self._frame(body)))
        elif body and not self.head:
            conn.write(self._frame(body))
        if not more:
            if self.chunked and not self.head:
                conn.write(b"0\r\n\r\n")
            self.finished = True
            if self.arrived is not None:
                self.arrived.set()  # a receive() waiting for a disconnect returns
        else:
            await conn.drain()

    def _frame(self, body: bytes) -> bytes:
        if not self.chunked or not body:
            return body
        return b"%x\r\n%s\r\n" % (len(body), body)

    def _head(self, body: bytes, more: bool) -> bytes:
        parts = [b"HTTP/1.1 %d %s\r\n" % (self.status, reason(self.status)), self.conn.front.date]
        length = False
        for name, value in self.headers:
            lower = name.lower()
            if b"\r" in name or b"\n" in name or b"\r" in value or b"\n" in value:
                raise RuntimeError(f"invalid response header {name!r}")
            if lower == b"content-length":
                length = True
            elif lower == b"transfer-encoding":
                continue  # the front frames the body itself
            elif lower == b"connection":
                if value.lower() == b"close":
                    self.keep_alive = False
                continue
            parts.append(b"%s: %s\r\n" % (name, value))
        no_body = self.status in (204, 304) or self.status < 200
        if not no_body and not length:
            if more:
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                parts.append(b"content-length: %d\r\n" % len(body))
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)


_REASONS = {int(s): s.phrase.encode() for s in HTTPStatus}


def reason(status: int) -> bytes:
    """The reason phrase of a status line ("" for a code HTTP does not name)."""
    return _REASONS.get(status, b"")
