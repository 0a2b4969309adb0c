"""A handler's result as the bytes the Lambda Python runtime writes for it.

The runtime (awslambdaric's `lambda_runtime_marshaller.py`) encodes with simplejson:
`", "` and `": "` separators, NaN and Infinity allowed, a Decimal written as `str()`
writes it (`1.10`, `1E+2`, `-0`; any NaN, signalling or not, as `NaN`), a namedtuple (or
anything with `_asdict()`) as an object, bytes inside the result as UTF-8 text, and a
result that is itself bytes sent as it is. Runtimes python3.12 and later write non-ASCII
text as it is (`ensure_ascii=False`), older ones escape it (`\\u00e9`); awslambdaric picks
by `AWS_EXECUTION_ENV`, skylift by the function's declared `Runtime`. The error payloads
are written the same way.

So skylift encodes with simplejson, set up as awslambdaric sets it up, and its C encoder
made once per instance, not per call as `JSONEncoder.encode` makes it: 2.3 µs of CPU
instead of 3.3 for make-change's response (`bench/result_encode_bench.py`). The stdlib's
C encoder took 1.3 but wrote other bytes; simplejson's looks up `_asdict` on every
container (the namedtuple rule), and that is most of the difference.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from typing import Any

import simplejson
from simplejson import encoder as _simplejson

# awslambdaric's list (4.2): the runtimes whose Encoder passes ensure_ascii=False.
NON_ASCII_RUNTIMES = frozenset({"python3.12", "python3.13", "python3.14", "python3.15"})


_TOO_DEEP = "maximum recursion depth exceeded while encoding a JSON object"


class MarshalError(Exception):
    """Raised when the runtime cannot write a result; `str()` is Lambda's errorMessage."""


class LambdaEncoder(simplejson.JSONEncoder):
    """awslambdaric's `Encoder` for `runtime` (which it reads from AWS_EXECUTION_ENV)."""

    def __init__(self, runtime: str) -> None:
        super().__init__(
            use_decimal=False, ensure_ascii=runtime not in NON_ASCII_RUNTIMES, allow_nan=True
        )

    def default(self, o: Any) -> Any:
        # awslambdaric's own, line for line: any NaN (quiet, signalling, negative) as NaN,
        # any other Decimal as its digits, raw (the infinities as Infinity, -Infinity).
        if isinstance(o, decimal.Decimal):
            if o.is_nan():
                return math.nan
            return simplejson.RawJSON(str(o))
        return super().default(o)


class ResultEncoder:
    """Writes results and error payloads as the runtime `runtime` writes them.

    >>> ResultEncoder("python3.12").encode({"café": decimal.Decimal("1.10")})
    b'{"caf\\xc3\\xa9": 1.10}'
    """

    def __init__(self, runtime: str) -> None:
        self.json = LambdaEncoder(runtime)
        # What `iterencode` makes on every call, made once: the markers hold only the
        # containers being encoded at the moment (emptied after a call that raised
        # part-way), the key memo is emptied after every call, as simplejson does.
        self._markers: dict[int, Any] = {}
        self._key_memo: dict[Any, str] = {}
        self._c_encode = self._c_encoder()

    def encode(self, result: Any) -> bytes:
        """`result` as the runtime sends it. Raises MarshalError where the runtime answers
        Runtime.MarshalError, and UnicodeEncodeError where its own write fails (a lone
        surrogate written as it is, by a non-ASCII runtime: the runtime process dies)."""
        if isinstance(result, bytes):  # sent as it is, as application/unknown
            return bytes(result)
        try:
            text = self._text(result)
        except Exception as exc:  # a loop, an unknown type, bytes that are not UTF-8...
            raise MarshalError(f"Unable to marshal response: {exc}") from exc
        return text.encode()

    def _text(self, value: Any) -> str:
        if self._c_encode is None:
            try:
                return self.json.encode(value)
            except RecursionError:  # Lambda's simplejson has its speedups: their message
                raise RecursionError(_TOO_DEEP) from None
        try:
            return "".join(self._c_encode(value, 0))
        except BaseException:
            self._markers.clear()
            raise
        finally:
            self._key_memo.clear()

    def _c_encoder(self) -> Callable[[Any, int], Any] | None:
        make = getattr(_simplejson, "c_make_encoder", None)  # private: not in the stubs
        if make is None:  # another interpreter: simplejson's speedups are built for ours
            return None
        enc = self.json
        try:
            made = make(
                self._markers,
                enc.default,
                _simplejson.encode_basestring_ascii
                if enc.ensure_ascii
                else _simplejson.encode_basestring,
                enc.indent,
                enc.key_separator,
                enc.item_separator,
                enc.sort_keys,
                enc.skipkeys,
                enc.allow_nan,
                self._key_memo,
                enc.use_decimal,
                enc.namedtuple_as_object,
                enc.tuple_as_array,
                None,  # int_as_string_bitcount
                enc.item_sort_key,
                enc.encoding,
                enc.for_json,
                enc.ignore_nan,
                decimal.Decimal,
                enc.iterable_as_array,
            )
            sample = {"a": [1, 2.5, None, "é\n", (3,)], "b": {1: b"x"}, "c": decimal.Decimal("1.5")}
            if "".join(made(sample, 0)) != enc.encode(sample):
                return None
        except Exception:  # another simplejson's make_encoder takes other arguments
            return None
        finally:
            self._markers.clear()
            self._key_memo.clear()
        return made  # type: ignore[no-any-return]
