"""Handler results whose bytes differ between JSON encoders or between Lambda's Python
runtimes. Imported by the tests and, copied into a function's code, by its handler
(so it needs only the stdlib, on any Python skylift runs functions on)."""

from __future__ import annotations

import collections
import enum
import math
import sys
from decimal import Decimal
from typing import Any

Point = collections.namedtuple("Point", "x y")


class Level(enum.IntEnum):
    HIGH = 3


class Label(str):
    pass


class Record:
    def _asdict(self) -> dict[str, Any]:
        return {"id": 7, "name": "ñandú"}


def deeply_nested(depth: int) -> list[Any]:
    top: list[Any] = []
    inner = top
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return top


def values() -> dict[str, Any]:
    """Each case's result, made anew (a handler's result is its own)."""
    circular: list[Any] = []
    circular.append({"again": circular})
    return {
        "api_response": {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": '{"message": "héllo"}',
            "isBase64Encoded": False,
        },
        "non_ascii": {"café": "ü 日本 😀", "ctl": "\x00\x1f\x7f\x80 \u2028\u2029"},
        "text_result": "naïve",
        "text_subclass": Label("façade"),
        "decimals": [
            Decimal(3),
            Decimal("1.10"),
            Decimal("1E+2"),
            Decimal("-0"),
            Decimal("1e-7"),
            Decimal("123456789012345678901234567890.123456789"),
        ],
        "decimal_specials": [
            Decimal("NaN"),
            Decimal("-NaN"),
            Decimal("sNaN"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
        ],
        "floats": [math.nan, math.inf, -math.inf, 0.1, 1e16, 1e-05, -0.0, 1e300],
        "numbers": [2**70, -(2**70), True, False, None, Level.HIGH],
        "keys": {1: "int", 1.5: "float", None: "null", False: "bool", "é": "text"},
        "namedtuple": {"p": Point(1, Point(2, (3, 4)))},
        "asdict": [Record()],
        "bytes_inside": [b"ab", {b"key": b"val\xc3\xa9"}],
        "bytes_result": b"\x00raw \xff",
        "empty": [{}, [], ""],
        # What the runtime cannot write (Runtime.MarshalError), and the instance lives on.
        "a_set": {"s": {1}},
        "an_object": [object()],
        "a_complex": 1j,
        "circular": circular,
        "too_deep": deeply_nested(3000),
        "bytes_not_utf8": [b"\xff"],
        "tuple_key": {(1, 2): "x"},
        "decimal_key": {Decimal("1.5"): "x"},
        # Escaped by an ASCII runtime; a non-ASCII one cannot send it as UTF-8 and dies.
        "lone_surrogate": {"s": "\ud800"},
    }


def handler(event: dict[str, Any], context: Any) -> Any:
    if event.get("version"):
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    if event.get("raise"):
        raise ValueError(event["raise"])
    return values()[event["case"]]
