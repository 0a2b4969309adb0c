"""Framing between the supervisor and a worker: one frame per invocation each way.

A frame is `!III` (header, body, extra lengths) then the three parts. The header is a
small JSON object; the body is the event (to the worker) or the result (back); the
extra part carries the invocation's captured output on the way back.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import orjson

PREFIX = struct.Struct("!III")


def pack(header: dict[str, Any], body: bytes = b"", extra: bytes = b"") -> bytes:
    head = orjson.dumps(header)
    return PREFIX.pack(len(head), len(body), len(extra)) + head + body + extra


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> tuple[dict[str, Any], bytes, bytes]:
    """Read one whole frame from a blocking socket (the worker's side)."""
    h, b, e = PREFIX.unpack(_recv_exact(sock, PREFIX.size))
    data = _recv_exact(sock, h + b + e)
    return orjson.loads(data[:h]), data[h : h + b], data[h + b :]


class FrameReader:
    """Incremental parser for the supervisor's asyncio side."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[dict[str, Any], bytes, bytes]]:
        buf = self._buf
        buf += data
        frames = []
        while len(buf) >= PREFIX.size:
            h, b, e = PREFIX.unpack_from(buf)
            end = PREFIX.size + h + b + e
            if len(buf) < end:
                break
            start = PREFIX.size
            frames.append(
                (
                    orjson.loads(bytes(buf[start : start + h])),
                    bytes(buf[start + h : start + h + b]),
                    bytes(buf[start + h + b : end]),
                )
            )
            del buf[:end]
        return frames
