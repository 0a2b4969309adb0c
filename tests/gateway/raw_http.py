"""Raw HTTP/1.1 over sockets, for the front's edge cases that an HTTP client would smooth
over: `connect` opens a socket that `conftest.py` closes after each test, and
`read_response` reads one whole (length-framed) response."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

opened: list[socket.socket] = []


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=15)
    opened.append(sock)
    return sock


def close_opened() -> None:
    while opened:
        opened.pop().close()


def read_response(sock: socket.socket) -> bytes:
    """One whole response (a length-framed one), or what came before the server closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    want = int(length.group(1)) if length else 0
    while len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
