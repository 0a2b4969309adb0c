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

The body is held in memory: at most about twice ``limit`` while it is being decoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import AsyncIterator, Callable

from skylift.api.s3_request import S3Request, S3RequestError

_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_CHUNK_HEADER = 4096  # a hex size and a 64-digit signature fit many times over
_MAX_TRAILERS = 16 * 1024
# Checksum algorithm -> (digest size, digest function or None where we cannot compute it).
_CHECKSUMS: dict[str, tuple[int, Callable[[bytes], bytes] | None]] = {
    "crc32": (4, lambda data: zlib.crc32(data).to_bytes(4, "big")),
    "crc32c": (4, None),
    "crc64nvme": (8, None),
    "sha1": (20, lambda data: hashlib.sha1(data, usedforsecurity=False).digest()),
    "sha256": (32, lambda data: hashlib.sha256(data).digest()),
}


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


async def read_object(request: S3Request, limit: int) -> tuple[bytes, list[tuple[str, str]]]:
    """A PutObject body, decoded and verified, and the checksum headers to answer with.

    Example: ``data, checksums = await read_object(request, 1 << 30)``, where
    ``checksums`` is e.g. ``[("x-amz-checksum-crc32", "NSRBwg==")]``.
    """
    headers = request.headers
    encodings = {token.strip().lower() for token in headers.get("content-encoding", "").split(",")}
    sha256 = headers.get("x-amz-content-sha256", "")
    chunked = "aws-chunked" in encodings or sha256.startswith("STREAMING-")
    length_header = "x-amz-decoded-content-length" if chunked else "content-length"
    declared = headers.get(length_header)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)  # before reading a byte of it
    trailers: dict[str, str] = {}
    if chunked:
        decoder = _AwsChunked(limit)
        async for piece in _pieces(request):
            decoder.feed(piece)
        data, trailers = decoder.finish()
    else:
        data = await read(request, limit)
    if declared is not None and declared != str(len(data)):
        raise S3RequestError(
            "IncompleteBody",
            400,
            f"You did not provide the number of bytes specified by {length_header}: it says "
            f"{declared}, the body holds {len(data)}. Send the whole body.",
        )
    if _SHA256_HEX.fullmatch(sha256) and hashlib.sha256(data).hexdigest() != sha256:
        raise S3RequestError(
            "XAmzContentSHA256Mismatch",
            400,
            "The provided 'x-amz-content-sha256' header does not match what was computed: "
            "the body changed on the way, or the header describes other bytes.",
            ClientComputedContentSHA256=sha256,
            S3ComputedContentSHA256=hashlib.sha256(data).hexdigest(),
        )
    announced = headers.get("x-amz-trailer", "").lower().split(",")
    for name in filter(None, map(str.strip, announced)):
        if name not in trailers:
            raise S3RequestError(
                "MalformedTrailerError",
                400,
                f"The request announced the trailer {name} (x-amz-trailer), but its body does "
                "not end with it. Send the trailer after the final zero-size chunk.",
            )
    _check_md5(headers.get("content-md5"), data)
    return data, _check_checksums({**headers, **trailers}, data)


def too_large(size: int, limit: int) -> S3RequestError:
    """``EntityTooLarge`` for a body of (at least) ``size`` bytes."""
    return S3RequestError(
        "EntityTooLarge",
        400,
        f"Your proposed upload exceeds the maximum allowed object size: {size} bytes or "
        f"more, where this server takes at most {limit} in one request (it holds the body "
        "in memory). Store smaller objects.",
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
        self.data = bytearray()
        self._pending = bytearray()
        self._size: int | None = None  # of the chunk being read; None before its header
        self._ended = False  # the zero-size chunk has been read; trailers follow

    def feed(self, piece: bytes) -> None:
        self._pending += piece
        while not self._ended:
            if self._size is None:
                end = self._pending.find(b"\r\n")
                if end < 0:
                    if len(self._pending) > _MAX_CHUNK_HEADER:
                        raise _malformed("a chunk header does not end within 4 KiB")
                    return
                size = bytes(self._pending[:end]).partition(b";")[0].strip()
                if not _HEX_SIZE.fullmatch(size):
                    raise _malformed(f"a chunk header starts {bytes(self._pending[:20])!r}")
                del self._pending[: end + 2]
                self._size = int(size, 16)
                if self._size == 0:
                    self._ended = True
                    break
                if len(self.data) + self._size > self.limit:
                    raise too_large(len(self.data) + self._size, self.limit)
            need = self._size + 2
            if len(self._pending) < need:
                return
            if self._pending[self._size : need] != b"\r\n":
                raise _malformed(f"a chunk of {self._size} bytes is not followed by CRLF")
            self.data += self._pending[: self._size]
            del self._pending[:need]
            self._size = None
        if len(self._pending) > _MAX_TRAILERS:
            raise _malformed("the trailers are longer than 16 KiB")

    def finish(self) -> tuple[bytes, dict[str, str]]:
        """The payload and the trailers (names lower-cased)."""
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
        return bytes(self.data), trailers


def _malformed(reason: str) -> S3RequestError:
    return S3RequestError(
        "InvalidRequest",
        400,
        f"The aws-chunked body is malformed: {reason}. Send chunks as '<hex size>\\r\\n"
        "<bytes>\\r\\n', then '0\\r\\n', trailers and an empty line.",
    )


def _check_md5(value: str | None, data: bytes) -> None:
    if value is None:
        return
    try:
        expected = base64.b64decode(value, validate=True)
    except binascii.Error:
        expected = b""
    if len(expected) != 16:
        raise S3RequestError(
            "InvalidDigest",
            400,
            "The Content-MD5 you specified is not valid: send the base64 of the body's "
            "16-byte MD5 digest.",
            ContentMD5=value,
        )
    actual = hashlib.md5(data, usedforsecurity=False).digest()
    if actual != expected:
        raise S3RequestError(
            "BadDigest",
            400,
            "The Content-MD5 you specified did not match what we received: the body changed "
            "on the way, or the digest describes other bytes. Nothing was stored.",
            ExpectedDigest=value,
            CalculatedDigest=base64.b64encode(actual).decode(),
        )


def _check_checksums(fields: dict[str, str], data: bytes) -> list[tuple[str, str]]:
    echoed: list[tuple[str, str]] = []
    for name, value in fields.items():
        algorithm = name.removeprefix("x-amz-checksum-")
        if algorithm not in _CHECKSUMS or algorithm == name:
            continue
        size, digest = _CHECKSUMS[algorithm]
        try:
            expected = base64.b64decode(value, validate=True)
        except binascii.Error:
            expected = b""
        if len(expected) != size:
            raise S3RequestError(
                "InvalidRequest",
                400,
                f"Value for {name} header is invalid: send the base64 of the {size}-byte "
                f"{algorithm.upper()} of the body.",
            )
        if digest is not None and digest(data) != expected:
            raise S3RequestError(
                "BadDigest",
                400,
                f"The {algorithm.upper()} you specified did not match the calculated checksum: "
                "the body changed on the way. Nothing was stored; send it again.",
            )
        echoed.append((name, value))
    return echoed
