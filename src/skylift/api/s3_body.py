"""Request bodies: read whole within a size limit, unwrapped from aws-chunked framing, and
checked against every integrity header the client sent.

aws-chunked (``Content-Encoding: aws-chunked``, or ``x-amz-content-sha256: STREAMING-...``)
frames the payload as chunks ``<hex size>[;chunk-signature=<hex>]\\r\\n<bytes>\\r\\n``, ends
with a zero-size chunk, then optional trailer lines (``x-amz-checksum-crc32:<base64>``) and
an empty line. Sources: "Signature Calculations for the Authorization Header: Transferring
Payload in Multiple Chunks" and its "Including Trailing Headers" variant (Amazon S3 API
reference), and botocore's encoder ``botocore.httpchecksum.AwsChunkedWrapper``, which boto3
uses for PutObject over HTTPS (``resolve_request_checksum_algorithm`` moves the checksum to
a trailer only when the scheme is https; over plain HTTP it is a header).

Signatures, chunk signatures included, are not verified. Digests are: ``Content-MD5``,
``x-amz-content-sha256`` when it is a SHA-256 and not a ``STREAMING-``/``UNSIGNED-``
marker, and ``x-amz-checksum-{crc32,sha1,sha256}`` from headers or trailers.
``crc32c`` and ``crc64nvme`` need native code, so they are accepted unverified.

Object bodies stream to a file (``receive_to_file``), computing every digest on the way;
small bodies (XML documents) are read whole (``read``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from skylift.api.s3_request import S3Request, S3RequestError
from skylift.storage import checksums
from skylift.storage.protocol import Checksum

_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_CHUNK_HEADER = 4096  # a hex size and a 64-digit signature fit many times over
_MAX_TRAILERS = 16 * 1024
_FLUSH = 1 << 20  # bytes gathered before each write to disk


async def read(request: S3Request, limit: int) -> bytes:
    """The whole request body; ``EntityTooLarge`` once it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for piece in _pieces(request):
        size += len(piece)
        if size > limit:
            raise too_large(size, limit)
        parts.append(piece)
    return b"".join(parts)


@dataclass(slots=True)
class Received:
    """An object body written to disk: its size, quoted MD5 ETag, the additional checksum
    the client sent (verified where computable), and the headers that echo it."""

    size: int
    etag: str
    checksum: Checksum | None
    echo: list[tuple[str, str]]


async def receive_to_file(request: S3Request, path: Path, limit: int) -> Received:
    """Stream a PutObject/UploadPart body to ``path``, decoded and verified as it comes.

    Holds at most about 1 MiB in memory whatever the size. On any error the caller
    removes ``path``. Example: ``got = await receive_to_file(request, tmp, 5 << 30)``.
    """
    headers = request.headers
    encodings = {token.strip().lower() for token in headers.get("content-encoding", "").split(",")}
    sha256 = headers.get("x-amz-content-sha256", "")
    chunked = "aws-chunked" in encodings or sha256.startswith("STREAMING-")
    length_header = "x-amz-decoded-content-length" if chunked else "content-length"
    declared = headers.get(length_header)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)  # before reading a byte of it
    announced = [
        name.strip().lower() for name in headers.get("x-amz-trailer", "").split(",") if name.strip()
    ]
    wanted = {
        n.removeprefix("x-amz-checksum-").upper()
        for n in [*headers, *announced]
        if n.startswith("x-amz-checksum-")
        and n not in ("x-amz-checksum-mode", "x-amz-checksum-type", "x-amz-checksum-algorithm")
    }
    sink = await asyncio.to_thread(_Sink, path, wanted, bool(_SHA256_HEX.fullmatch(sha256)))
    decoder = _AwsChunked(limit) if chunked else None
    pending = bytearray()
    size = 0
    try:
        async for piece in _pieces(request):
            if decoder is not None:
                piece = decoder.feed(piece)
            size += len(piece)
            if size > limit:
                raise too_large(size, limit)
            pending += piece
            if len(pending) >= _FLUSH:
                await asyncio.to_thread(sink.write, bytes(pending))
                pending.clear()
        await asyncio.to_thread(sink.write, bytes(pending))
    finally:
        await asyncio.to_thread(sink.close)
    trailers = decoder.finish() if decoder is not None else {}
    if declared is not None and declared != str(size):
        raise S3RequestError(
            "IncompleteBody",
            400,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    if sink.sha256 is not None and sink.sha256.hexdigest() != sha256:
        raise S3RequestError(
            "XAmzContentSHA256Mismatch",
            400,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ClientComputedContentSHA256=sha256,
            S3ComputedContentSHA256=sink.sha256.hexdigest(),
        )
    for name in announced:
        if name not in trailers:
            raise S3RequestError(
                "MalformedTrailerError",
                400,
                "The request contained trailing data that was not well-formed or did not "
                "conform to our published schema.",
            )
    _check_md5(headers.get("content-md5"), sink.md5.digest())
    checksum, echo = _check_checksums({**headers, **trailers}, sink.hashers)
    return Received(size, f'"{sink.md5.hexdigest()}"', checksum, echo)


class _Sink:
    """Where a streamed body goes: the file and the digests, fed on a worker thread."""

    def __init__(self, path: Path, algorithms: set[str], sha256: bool) -> None:
        self.file = open(path, "xb")  # noqa: SIM115 - closed by close()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256() if sha256 else None
        self.hashers: dict[str, checksums.Hasher | None] = {
            name: checksums.hasher(name) for name in algorithms
        }

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.md5.update(data)
        if self.sha256 is not None:
            self.sha256.update(data)
        for hasher in self.hashers.values():
            if hasher is not None:
                hasher.update(data)

    def close(self) -> None:
        self.file.close()


def too_large(size: int, limit: int) -> S3RequestError:
    """``EntityTooLarge`` for a body of (at least) ``size`` bytes."""
    return S3RequestError(
        "EntityTooLarge",
        400,
        "Your proposed upload exceeds the maximum allowed size",
        ProposedSize=str(size),
        MaxSizeAllowed=str(limit),
    )


async def _pieces(request: S3Request) -> AsyncIterator[bytes]:
    while not request.consumed:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            request.consumed = True
            raise S3RequestError(
                "IncompleteBody", 400, "The client disconnected before sending the whole body."
            )
        request.consumed = not message.get("more_body", False)
        piece: bytes = message.get("body", b"")
        if piece:
            yield piece


class _AwsChunked:
    """Decodes an aws-chunked body piece by piece, as the pieces arrive."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.decoded = 0
        self._pending = bytearray()
        self._size: int | None = None  # of the chunk being read; None before its header
        self._ended = False  # the zero-size chunk has been read; trailers follow

    def feed(self, piece: bytes) -> bytes:
        """The payload bytes ``piece`` completes (possibly none)."""
        self._pending += piece
        out = bytearray()
        while not self._ended:
            if self._size is None:
                end = self._pending.find(b"\r\n")
                if end < 0:
                    if len(self._pending) > _MAX_CHUNK_HEADER:
                        raise _malformed("a chunk header does not end within 4 KiB")
                    return bytes(out)
                size = bytes(self._pending[:end]).partition(b";")[0].strip()
                if not _HEX_SIZE.fullmatch(size):
                    raise _malformed(f"a chunk header starts {bytes(self._pending[:20])!r}")
                del self._pending[: end + 2]
                self._size = int(size, 16)
                if self._size == 0:
                    self._ended = True
                    break
                if self.decoded + self._size > self.limit:
                    raise too_large(self.decoded + self._size, self.limit)
            need = self._size + 2
            if len(self._pending) < need:
                # Pass on what we have of a large chunk rather than hold it whole.
                take = min(len(self._pending), self._size)
                if take >= _FLUSH:
                    out += self._pending[:take]
                    del self._pending[:take]
                    self._size -= take
                    self.decoded += take
                return bytes(out)
            if self._pending[self._size : need] != b"\r\n":
                raise _malformed(f"a chunk of {self._size} bytes is not followed by CRLF")
            out += self._pending[: self._size]
            self.decoded += self._size
            del self._pending[:need]
            self._size = None
        if len(self._pending) > _MAX_TRAILERS:
            raise _malformed("the trailers are longer than 16 KiB")
        return bytes(out)

    def finish(self) -> dict[str, str]:
        """The trailers (names lower-cased), once the whole body has been fed."""
        if not self._ended:
            raise S3RequestError(
                "IncompleteBody",
                400,
                "The aws-chunked body ends before its final zero-size chunk. Send it whole.",
            )
        trailers: dict[str, str] = {}
        for line in bytes(self._pending).split(b"\r\n"):
            if line:
                name, colon, value = line.partition(b":")
                if not colon:
                    raise _malformed(f"the trailer line {line[:40]!r} has no ':'")
                trailers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        return trailers


def _malformed(reason: str) -> S3RequestError:
    return S3RequestError(
        "InvalidRequest",
        400,
        f"The aws-chunked body is malformed: {reason}. Send chunks as '<hex size>\\r\\n"
        "<bytes>\\r\\n', then '0\\r\\n', trailers and an empty line.",
    )


def _check_md5(value: str | None, actual: bytes) -> None:
    if value is None:
        return
    try:
        expected = base64.b64decode(value, validate=True)
    except binascii.Error:
        expected = b""
    if len(expected) != 16:
        raise S3RequestError(
            "InvalidDigest", 400, "The Content-MD5 you specified was invalid.", ContentMD5=value
        )
    if actual != expected:
        raise S3RequestError(
            "BadDigest",
            400,
            "The Content-MD5 you specified did not match what we received.",
            ExpectedDigest=value,
            CalculatedDigest=base64.b64encode(actual).decode(),
        )


def checksum_header(fields: dict[str, str]) -> tuple[str, str] | None:
    """(S3 algorithm name, base64 value) of the ``x-amz-checksum-*`` field present, if any."""
    for name, value in fields.items():
        algorithm = name.removeprefix("x-amz-checksum-").upper()
        if name.startswith("x-amz-checksum-") and algorithm in checksums.SIZES:
            return algorithm, value
    return None


def _check_checksums(
    fields: dict[str, str], computed: dict[str, checksums.Hasher | None]
) -> tuple[Checksum | None, list[tuple[str, str]]]:
    found: Checksum | None = None
    echoed: list[tuple[str, str]] = []
    for name, value in fields.items():
        algorithm = name.removeprefix("x-amz-checksum-").upper()
        if not name.startswith("x-amz-checksum-") or algorithm not in checksums.SIZES:
            continue
        try:
            expected = base64.b64decode(value, validate=True)
        except binascii.Error:
            expected = b""
        if len(expected) != checksums.SIZES[algorithm]:
            raise S3RequestError("InvalidRequest", 400, f"Value for {name} header is invalid.")
        hasher = computed.get(algorithm)
        if hasher is not None and hasher.digest() != expected:
            raise S3RequestError(
                "BadDigest",
                400,
                f"The {algorithm} you specified did not match the calculated checksum.",
            )
        if found is not None:
            raise S3RequestError("InvalidRequest", 400, "Expecting a single x-amz-checksum- header")
        found = Checksum(algorithm, value, "FULL_OBJECT")
        echoed.append((name, value))
    return found, echoed
