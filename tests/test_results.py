"""Results and error payloads are the bytes awslambdaric of the function's runtime sends
(its own marshaller, set up for each `AWS_EXECUTION_ENV`, is the reference), call after
call, also after a result that could not be written."""

from __future__ import annotations

from typing import Any

import pytest
from awslambdaric.bootstrap import make_error
from awslambdaric.lambda_runtime_exception import FaultException
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller, to_json

from result_values import values
from skylift.runtime.faults import error_payload
from skylift.runtime.results import MarshalError, ResultEncoder

RUNTIMES = ["python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14"]
CASES = list(values())

Outcome = tuple[str, Any]


def lambda_sends(runtime: str, value: Any, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """What awslambdaric of `runtime` does with a handler's result: sends bytes, answers
    Runtime.MarshalError with a message, or dies writing its answer."""
    monkeypatch.setenv("AWS_EXECUTION_ENV", f"AWS_Lambda_{runtime}")
    try:
        data, _ = LambdaMarshaller().marshal_response(value)
    except FaultException as exc:
        assert exc.exception_type == "Runtime.MarshalError"
        return "marshal_error", exc.msg
    try:  # as LambdaRuntimeClient.post_invocation_result sends it
        return "bytes", data if isinstance(data, bytes) else data.encode("utf-8")
    except UnicodeEncodeError:
        return "dies", None


def skylift_sends(encoder: ResultEncoder, value: Any) -> Outcome:
    try:
        return "bytes", encoder.encode(value)
    except MarshalError as exc:
        return "marshal_error", str(exc)
    except UnicodeEncodeError:
        return "dies", None


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", CASES)
def test_a_result_is_what_the_runtimes_awslambdaric_sends(runtime, case, monkeypatch):
    expected = lambda_sends(runtime, values()[case], monkeypatch)
    assert skylift_sends(ResultEncoder(runtime), values()[case]) == expected


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_one_encoder_writes_every_case_in_turn(runtime, monkeypatch):
    # As a worker does: one encoder for the instance's life, failures in between.
    encoder = ResultEncoder(runtime)
    for case in CASES + CASES[::-1]:
        value = values()[case]
        assert skylift_sends(encoder, value) == lambda_sends(runtime, value, monkeypatch), case


def test_the_runtimes_differ_where_the_tests_say():
    assert ResultEncoder("python3.11").encode("é ☃") == b'"\\u00e9 \\u2603"'
    assert ResultEncoder("python3.12").encode("é ☃") == '"é ☃"'.encode()
    decimals = values()["decimals"] + values()["decimal_specials"]
    assert ResultEncoder("python3.13").encode(decimals) == (
        b"[3, 1.10, 1E+2, -0, 1E-7, 123456789012345678901234567890.123456789,"
        b" NaN, NaN, NaN, Infinity, -Infinity]"
    )
    assert ResultEncoder("python3.11").encode(values()["namedtuple"]) == (
        b'{"p": {"x": 1, "y": {"x": 2, "y": [3, 4]}}}'
    )
    with pytest.raises(MarshalError, match=r"^Unable to marshal response: Object of type set "):
        ResultEncoder("python3.12").encode({1, 2})


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_error_payload_is_written_as_the_runtime_writes_it(runtime, monkeypatch):
    monkeypatch.setenv("AWS_EXECUTION_ENV", f"AWS_Lambda_{runtime}")
    stack = ['  File "/var/task/app.py", line 3, in handler\n    raise ValueError("é")\n']
    ours = error_payload("naïve ☃ \u2028", "ValueError", "req-1", stack)
    theirs = make_error("naïve ☃ \u2028", "ValueError", stack, "req-1")
    assert ResultEncoder(runtime).encode(ours) == to_json(theirs).encode()


def test_a_result_that_cannot_be_written_leaves_the_next_one_alone():
    encoder = ResultEncoder("python3.12")
    inner: list[object] = []
    circular = {"a": inner}
    inner.append(circular)
    with pytest.raises(MarshalError, match="Circular reference detected"):
        encoder.encode(circular)
    unwritable = {"ok": [1, 2], "bad": {"x": object()}}
    with pytest.raises(MarshalError, match="Object of type object is not JSON serializable"):
        encoder.encode(unwritable)
    # The same containers again, once fixed: nothing remembered from the failed calls.
    inner.clear()
    unwritable["bad"] = {"x": 1}
    assert encoder.encode(circular) == b'{"a": []}'
    assert encoder.encode(unwritable) == b'{"ok": [1, 2], "bad": {"x": 1}}'
