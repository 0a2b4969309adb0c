"""A real HTTP server on 127.0.0.1 that records the webhooks POSTed to it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hooks:
    url: str
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # path -> how many requests to it still fail with 503 (to prove retries)
    failing: dict[str, int] = field(default_factory=dict)
    refusing: set[str] = field(default_factory=set)  # paths answered 404

    def to(self, path: str) -> list[dict[str, Any]]:
        return [body for where, body in list(self.received) if where == path]


@contextmanager
def webhook_server() -> Iterator[Hooks]:
    hooks = Hooks("")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = 200
            with lock:
                left = hooks.failing.get(self.path, 0)
                if left:
                    hooks.failing[self.path] = left - 1
                    status = 503
                elif self.path in hooks.refusing:
                    status = 404
                else:
                    hooks.received.append((self.path, json.loads(body)))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hooks.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks
    finally:
        server.shutdown()
        server.server_close()
