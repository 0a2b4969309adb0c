"""Framing between the supervisor and a worker: one frame per invocation each way.

A frame is `!III` (header, body, extra lengths) then the three parts. The header is a
small JSON object; the body is the event (to the worker) or the result (back); the
extra part carries the invocation's captured output on the way back.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from skylift.runtime import jsonlib as orjson

PREFIX = struct.Struct("!III")
MAX_PACKET = 8 << 20  # largest control message between supervisor and zygote


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
    """Read one whole frame from a blocking socket (the worker's side).

    One frame is in flight per channel at a time, so reading ahead cannot swallow the
    next one; a small frame arrives in a single recv.
    """
    data = sock.recv(1 << 16)
    if not data:
        raise EOFError("peer closed the channel")
    if len(data) < PREFIX.size:
        data += _recv_exact(sock, PREFIX.size - len(data))
    h, b, e = PREFIX.unpack_from(data)
    end = PREFIX.size + h + b + e
    if len(data) < end:
        data += _recv_exact(sock, end - len(data))
    start = PREFIX.size
    return (
        orjson.loads(data[start : start + h]),
        data[start + h : start + h + b],
        data[start + h + b : end],
    )


class FrameReader:
    """Incremental parser for the supervisor's asyncio side."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[dict[str, Any], bytes, bytes]]:
        buf = self._buf
        if not buf and len(data) >= PREFIX.size:
            h, b, e = PREFIX.unpack_from(data)
            start = PREFIX.size
            if len(data) == start + h + b + e:  # the usual case: one whole frame, no copy
                body = start + h
                return [(orjson.loads(data[start:body]), data[body : body + b], data[body + b :])]
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
