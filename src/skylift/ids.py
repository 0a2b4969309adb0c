"""Request ids, cheaply: a random prefix per process and a counter.

`uuid.uuid4()` reads the kernel's random source and builds a `UUID` object for every
id (about 2 µs, twice per HTTP invocation). Ids only need to be unique, not secret: each
process draws 60 random bits once (again in a forked child) and numbers its ids after
them, the counter scrambled by an odd multiplier (a bijection: no repeats for 2**62 ids)
so that ids do not look sequential. They keep the shape of AWS's: a version-4 UUID.

>>> import re
>>> re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
...              request_id()) is not None
True
"""

from __future__ import annotations

import base64
import itertools
import os

_SCRAMBLE = 0x9E3779B97F4A7C15  # odd: multiplying by it permutes the counter's values
_MASK = (1 << 62) - 1
_LOW = (1 << 48) - 1


class _Source:
    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        a, b, c = os.urandom(4), os.urandom(2), os.urandom(2)
        version4 = f"4{c.hex()[1:]}"  # 12 random bits after the version digit
        self.prefix = f"{a.hex()}-{b.hex()}-{version4}-"
        self.counter = itertools.count(int.from_bytes(os.urandom(8), "big") & _MASK)
        self.hex_prefix = os.urandom(6).hex()
        self.gateway_prefix = os.urandom(3)


_source = _Source()
os.register_at_fork(after_in_child=_source.reseed)


def request_id() -> str:
    """A new id shaped like a UUID 4, unique across processes and restarts."""
    n = (next(_source.counter) * _SCRAMBLE) & _MASK
    # The variant's two bits (10) come first in the fourth group, as in every UUID 4.
    return f"{_source.prefix}{(n >> 48) | 0x8000:04x}-{n & _LOW:012x}"


def hex_id(digits: int) -> str:
    """`digits` (at most 28) hex digits, unique like `request_id` (X-Ray's trace ids)."""
    n = (next(_source.counter) * _SCRAMBLE) & _MASK
    return f"{_source.hex_prefix}{n:016x}"[-digits:]


def gateway_id() -> str:
    """A new id shaped like API Gateway's own (`JKJaXmPLvHcESHA=`: 11 bytes in URL-safe
    base64): an HTTP API's request id, a REST API's extended request id (`x-amz-apigw-id`).
    Unique like `request_id` (3 random bytes per process, then the scrambled counter)."""
    n = (next(_source.counter) * _SCRAMBLE) & _MASK
    return base64.urlsafe_b64encode(_source.gateway_prefix + n.to_bytes(8, "big")).decode()
