"""The control API's JSON in and out, for each of its ASGI apps (status and scaling,
describe and replay, alerts, logs, the dashboard's data)."""

from __future__ import annotations

from typing import Any

import orjson

from skylift.asgi_types import Receive, Send


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request's body, whole; None when it is over `limit` bytes (the rest is read
    and dropped). A client that leaves mid-body ends it with what came."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return None if size > limit else b"".join(chunks)


async def send_json(send: Send, status: int, answer: dict[str, Any]) -> None:
    """`answer` as a JSON response, never cached (it is the server's state now)."""
    body = orjson.dumps(answer)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
