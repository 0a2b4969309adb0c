"""What an S3 operation answers, and how it goes out: status, headers, an XML body or an
open file sent in chunks; errors as S3's XML error document.

Header values go out as latin-1 when they are printable ASCII; anything else (metadata
with non-ASCII text) is RFC 2047-encoded (``=?UTF-8?B?...?=``), as S3 encodes such
metadata "to make them mail-safe before returning" (user guide, "Working with object
metadata").
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, TypeVar

from skylift.api import s3_xml
from skylift.api.s3_request import S3Request, S3RequestError
from skylift.asgi_types import Send
from skylift.storage.errors import StorageError
from skylift.storage.protocol import ObjectInfo, ObjectStore

ChangeListener = Callable[[str, str, ObjectInfo | str, str], Awaitable[None]]
XML = ("Content-Type", "application/xml")
_SEND_CHUNK = 1 << 20
T = TypeVar("T")
_NO_BODY = frozenset({204, 304})
_PLAIN_HEADER = re.compile(r"[\t\x20-\x7e]*")


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: BinaryIO | None = None  # sent from ``start``, ``length`` bytes, then closed
    start: int = 0
    length: int | None = None  # Content-Length, when not len(body)


def xml(body: bytes, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    """A 200 (or ``status``) answer with an XML body."""
    return Response(status, [XML, *(headers or [])], body)


class Service(Protocol):
    """What an operation needs of ``S3Api``: the store, the Region, the size limit and
    the change notifications."""

    store: ObjectStore
    region: str
    max_object_size: int

    async def notify(self, event: str, bucket: str, subject: ObjectInfo | str, rid: str) -> None:
        """Tell the listener about a change (an event name like ``ObjectCreated:Put``)."""
        ...


Handler = Callable[[Service, S3Request, str], Awaitable[Response]]


def error(exc: StorageError | S3RequestError, request_id: str) -> Response:
    body = s3_xml.error(exc.code, exc.message, exc.details(), request_id)
    return Response(exc.status, [XML, *getattr(exc, "headers", [])], body)


async def send(send: Send, response: Response, request_id: str, *, head: bool) -> None:
    headers = [(name.encode(), header_value(value)) for name, value in response.headers]
    headers.append((b"x-amz-request-id", request_id.encode()))
    headers.append((b"x-amz-id-2", base64.b64encode(request_id.encode() * 3)))
    length = len(response.body) if response.length is None else response.length
    if response.status not in _NO_BODY and not (head and response.status >= 300):
        headers.append((b"content-length", str(length).encode()))
    file = response.file
    try:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if file is None or head:
            body = b"" if head or response.status in _NO_BODY else response.body
            await send({"type": "http.response.body", "body": body})
            return
        await off_loop(file, file.seek, response.start)
        remaining = length
        while remaining > 0:
            chunk = await off_loop(file, file.read, min(_SEND_CHUNK, remaining))
            if not chunk:
                break  # cannot happen to an open file of one version; the server will complain
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        if file is not None:
            file.close()


async def off_loop(file: BinaryIO, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``, a blocking use of a stored object's `file`, off the loop: on
    the threads the store gave its reads (``file.executor``), else asyncio's default."""
    call = functools.partial(function, *args)
    return await asyncio.get_running_loop().run_in_executor(getattr(file, "executor", None), call)


def header_value(text: str) -> bytes:
    """``text`` as a header value: itself when printable ASCII, else RFC 2047-encoded."""
    if _PLAIN_HEADER.fullmatch(text):
        return text.encode("ascii")
    return b"=?UTF-8?B?" + base64.b64encode(text.encode("utf-8", "replace")) + b"?="
