"""S3's additional checksum algorithms, computed piece by piece as bytes stream past.

S3 names them ``CRC32``, ``CRC32C``, ``CRC64NVME``, ``SHA1``, ``SHA256`` (and lately
``SHA512``, ``MD5`` and the ``XXHASH`` family); a digest travels base64-encoded
(``x-amz-checksum-crc32: NSRBwg==``). CRC32C and CRC64NVME come from awscrt (AWS's own
C runtime, which botocore uses for them too); the XXHASH family has no implementation
here, so ``hasher`` gives None for it: those values are stored and returned as sent,
unverified.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from typing import Protocol

SIZES = {
    "CRC32": 4,
    "CRC32C": 4,
    "CRC64NVME": 8,
    "SHA1": 20,
    "SHA256": 32,
    "SHA512": 64,
    "MD5": 16,
    "XXHASH64": 8,
    "XXHASH3": 8,
    "XXHASH128": 16,
}


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _Crt:
    """CRC32C or CRC64NVME, continued chunk by chunk with awscrt's functions."""

    def __init__(self, function: Callable[[bytes, int], int], size: int) -> None:
        self.function = function
        self.size = size
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = self.function(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self.size, "big")


def hasher(algorithm: str) -> Hasher | None:
    """A fresh incremental hasher for ``algorithm`` (S3's name), or None if not computable."""
    if algorithm == "CRC32":
        return _Crc32()
    if algorithm in ("CRC32C", "CRC64NVME"):
        from awscrt import checksums  # type: ignore[import-untyped]  # awscrt ships no hints

        if algorithm == "CRC32C":
            return _Crt(checksums.crc32c, 4)
        return _Crt(checksums.crc64nvme, 8)
    if algorithm in ("SHA1", "SHA256", "SHA512", "MD5"):
        return hashlib.new(algorithm.lower(), usedforsecurity=False)
    return None


def encode(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def composite(algorithm: str, values: list[str]) -> str | None:
    """S3's composite checksum of a multipart object: the checksum of the parts' binary
    checksums, then ``-N``; None if the algorithm is not computable here."""
    combined = hasher(algorithm)
    if combined is None:
        return None
    for value in values:
        combined.update(base64.b64decode(value))
    return f"{encode(combined.digest())}-{len(values)}"
