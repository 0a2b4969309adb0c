"""The dashboard at `/_skylift/`: a page, its assets, and the data it shows, live.

- `GET /_skylift/`: the page (and `/_skylift/static/NAME` its script and style sheet,
  shipped in the package: nothing comes from elsewhere);
- `GET /_skylift/dashboard/state`: `{"functions", "queues", "alerts"}` now;
- `GET /_skylift/dashboard/logs?filter=PATTERN&function=NAME`: the latest stored log
  lines that match, or 400 saying what is wrong with the pattern;
- `GET /_skylift/dashboard/events?filter=...&function=...`: server-sent events, a
  `snapshot` (as `state` answers) every `interval` and `logs` with the lines that
  appeared since; the stream ends when the browser leaves or the server stops.

It sits in front of the control API (same prefix, same guard; the page and its assets,
which reveal nothing, are open like the health check so a browser can load them before
it holds the token) and passes every other path on. Alerts are acked through the alerts
API (`POST /_skylift/alerts/ID/ack`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

from skylift.asgi_json import send_json
from skylift.asgi_types import Asgi, Receive, Scope, Send
from skylift.observe import alerts_store, logs_layout
from skylift.observe.alerts_api import RECENT, AlertsApi
from skylift.observe.alerts_store import RESOLVED
from skylift.observe.dashboard_data import Board
from skylift.observe.logs_query import BadQuery, query
from skylift.observe.logs_read import LogEvent, Reader
from skylift.observe.metrics_http import ROUTE_KEY
from skylift.spec import CONTROL_PREFIX

PAGE = CONTROL_PREFIX
STATIC = CONTROL_PREFIX + "static/"
DATA = CONTROL_PREFIX + "dashboard/"
INTERVAL = 1.0  # seconds between a stream's updates
# How far back a viewer's first lines reach: the latest lines, within bounds.
TAIL_BYTES = 256 * 1024
MAX_LINES = 500
_ASSETS = {
    "dashboard.html": b"text/html; charset=utf-8",
    "dashboard.js": b"text/javascript; charset=utf-8",
    "dashboard.css": b"text/css; charset=utf-8",
}
# The page runs only its own script and style, and talks only to this server.
_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class Dashboard:
    def __init__(
        self, control: Asgi, board: Board, alerts: AlertsApi, state_dir: Path, *, interval: float
    ) -> None:
        self.control = control
        self.board = board
        self.alerts = alerts
        self.logs = logs_layout.root(state_dir)
        self.interval = interval
        # Set by the server once it exists: streams end when it starts shutting down.
        self.stopping: Callable[[], bool] = lambda: False
        self.viewers = 0  # open event streams
        self._assets: dict[str, bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == PAGE or path.startswith(STATIC) or path.startswith(DATA)
        ):
            await self.control(scope, receive, send)
            return
        # Counted apart from the control API: a stream's duration is how long a tab stayed.
        scope[ROUTE_KEY] = "aws:dashboard"
        if scope["method"] != "GET":
            await _drain(receive)
            await send_json(send, 405, {"message": f"{path} answers GET, not {scope['method']}"})
            return
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        if path == PAGE or path.startswith(STATIC):
            name = "dashboard.html" if path == PAGE else path[len(STATIC) :]
            await self.asset(send, name)
        elif path == DATA + "state":
            await send_json(send, 200, await self.state())
        elif path == DATA + "logs":
            try:
                reader = await asyncio.to_thread(self.reader, query)
            except BadQuery as exc:
                await send_json(send, 400, {"message": str(exc)})
                return
            lines = await asyncio.to_thread(reader.poll)
            await send_json(send, 200, {"lines": [_line(e) for e in lines[-MAX_LINES:]]})
        elif path == DATA + "events":
            try:
                reader = await asyncio.to_thread(self.reader, query)
            except BadQuery as exc:
                await send_json(send, 400, {"message": str(exc)})
                return
            await self.stream(receive, send, reader)
        else:
            await send_json(
                send,
                404,
                {
                    "message": f"no dashboard data at {path}: use GET {DATA}state, "
                    f"{DATA}logs or {DATA}events"
                },
            )

    async def asset(self, send: Send, name: str) -> None:
        content_type = _ASSETS.get(name)
        if content_type is None:
            await send_json(send, 404, {"message": f"the dashboard has no asset {name!r}"})
            return
        body = self._assets.get(name)
        if body is None:
            body = self._assets[name] = (
                resources.files("skylift.observe").joinpath("static", name).read_bytes()
            )
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache"),
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", _POLICY),
            (b"referrer-policy", b"no-referrer"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def state(self) -> dict[str, Any]:
        snapshot = await self.board.snapshot()
        return {**snapshot, "alerts": self.open_alerts(), "viewers": self.viewers}

    def open_alerts(self) -> list[dict[str, Any]]:
        """Alerts not resolved yet (open or acked), newest first."""
        if not (self.alerts.state_dir / alerts_store.FILE).exists():
            return []  # no policy ever ran here: no alerts, and no database made for none
        recent = self.alerts.store.recent(time.time() - RECENT)
        found = [a.to_dict() for a in recent if a.state != RESOLVED]
        return sorted(found, key=lambda a: -float(a["opened_at"]))

    def reader(self, asked: dict[str, str]) -> Reader:
        """A reader of the latest lines that match `filter` (CloudWatch's syntax). Made
        in a thread: finding where each file's last bytes start reads its frames' heads."""
        wanted = query(asked.get("function") or None, None, asked.get("filter", ""))
        reader = Reader(self.logs, wanted)
        reader.tail(TAIL_BYTES)
        return reader

    async def stream(self, receive: Receive, send: Send, reader: Reader) -> None:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),  # a proxy in front must not hold the events
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        gone = asyncio.ensure_future(_disconnected(receive))
        self.viewers += 1
        try:
            first = True
            while not gone.done() and not self.stopping():
                events = [_event("snapshot", await self.state())]
                lines = await asyncio.to_thread(reader.poll)
                if lines or first:
                    events.append(_event("logs", [_line(e) for e in lines[-MAX_LINES:]]))
                first = False
                body = b"".join(events)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                await self._pause(gone)
            if not gone.done():  # the server is stopping: end the stream cleanly
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.viewers -= 1
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone

    async def _pause(self, gone: asyncio.Future[None]) -> None:
        """Wait for the next update, unless the browser leaves or the server stops first."""
        deadline = time.monotonic() + self.interval
        while not gone.done() and not self.stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # uvicorn says it is stopping by a flag, not an event: look every 0.1 s.
            await asyncio.wait({gone}, timeout=min(left, 0.1))


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _line(event: LogEvent) -> dict[str, object]:
    return {
        "function": event.function,
        "timestamp": event.timestamp,
        "requestId": event.request_id,
        "message": event.message,
    }


async def _disconnected(receive: Receive) -> None:
    """Returns when the client goes away (a closed tab, a dropped connection)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _drain(receive: Receive) -> None:
    message = await receive()
    while message.get("more_body"):
        message = await receive()
