"""Results are written as the Lambda runtime's `json.dumps` writes them, call after call,
also after a result that could not be written."""

from __future__ import annotations

import decimal
import json

import pytest

from skylift.runtime.results import ENCODER, encode

VALUES = [
    None,
    True,
    0,
    -(2**70),
    1e16,
    1e-05,
    float("nan"),
    float("inf"),
    "café ☃ \ud800",
    "",
    [],
    {},
    {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"a": 1}'},
    {"n": decimal.Decimal("1.10"), "i": decimal.Decimal("3"), 1: "int key", None: [()]},
    [[[{"deep": [1.5, False]}]]],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_bytes_are_the_stdlibs(value):
    assert encode(value) == ENCODER.encode(value).encode()
    assert encode(value) == json.dumps(value, default=ENCODER.default).encode()


def test_a_result_that_cannot_be_written_leaves_the_next_one_alone():
    inner: list[object] = []
    circular = {"a": inner}
    inner.append(circular)
    with pytest.raises(ValueError, match="Circular reference detected"):
        encode(circular)
    unwritable = {"ok": [1, 2], "bad": {"x": object()}}
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        encode(unwritable)
    # The same containers again, once fixed: nothing remembered from the failed calls.
    inner.clear()
    unwritable["bad"] = {"x": 1}
    assert encode(circular) == b'{"a": []}'
    assert encode(unwritable) == b'{"ok": [1, 2], "bad": {"x": 1}}'
