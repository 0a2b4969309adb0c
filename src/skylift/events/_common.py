"""Helpers shared by the API Gateway payload formats 1.0 (REST) and 2.0 (HTTP API).

Request bodies ("binary media" rule, both formats): a body goes to the function as
text when it is valid UTF-8 *and* its content type is textual: ``text/*``,
``application/json``, ``application/*+json``, ``application/xml``, ``*+xml``,
``application/javascript``, ``application/x-www-form-urlencoded``, or no content type at
all. Any other body is base64-encoded and flagged ``isBase64Encoded: true``. An empty
body is ``null`` (1.0) or absent (2.0).

Query strings are split on ``&`` and each name and value is form-decoded (``+`` is a
space, then percent-decoding), as API Gateway does for ``queryStringParameters``.
"""

from __future__ import annotations

import base64
import re
import time
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from skylift.events.http import HttpResponse, MalformedResponse

_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/xml",
        "application/x-www-form-urlencoded",
    }
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_JSON = "application/json"
_NOT_FOUND = b'{"message":"Not Found"}'
_TOO_LARGE = b'{"message":"Request Entity Too Large"}'


@lru_cache(maxsize=256)  # clients repeat a few content types
def is_text_type(content_type: str | None) -> bool:
    """Whether a request body of this content type is passed as text (if it is UTF-8)."""
    if content_type is None:
        return True
    mime = content_type.partition(";")[0].strip().lower()
    return (
        not mime
        or mime.startswith("text/")
        or mime in _TEXT_TYPES
        or mime.endswith(("+json", "+xml"))
    )


def encode_body(body: bytes, content_type: str | None) -> tuple[str | None, bool]:
    """The event's (body, isBase64Encoded) for a request body; body None when empty."""
    if not body:
        return None, False
    if is_text_type(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def sniff_headers(headers: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """The (content-type, user-agent) of a request; names match in any case, last wins."""
    content_type = user_agent = None
    for name, value in headers:
        # Testing the length first skips lower() for almost every other header.
        if len(name) == 12 and name.lower() == "content-type":
            content_type = value
        elif len(name) == 10 and name.lower() == "user-agent":
            user_agent = value
    return content_type, user_agent


def _unquote(text: str) -> str:
    return unquote_plus(text) if ("%" in text or "+" in text) else text


def parse_query(raw_query: str) -> dict[str, list[str]]:
    """Decoded parameter name -> its values in arrival order; "a" alone means a=""."""
    params: dict[str, list[str]] = {}
    if not raw_query:
        return params
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = _unquote(name)
        value = _unquote(value)
        values = params.get(name)
        if values is None:
            params[name] = [value]
        else:
            values.append(value)
    return params


_last_clf: tuple[int, str] = (-1, "")


def clf_time(epoch_ms: int) -> str:
    """Epoch ms as API Gateway's requestTime, e.g. "09/Apr/2015:12:34:56 +0000".

    Built by hand rather than with strftime("%b") so the month is English in any locale;
    the last second is memoised because bursts of requests share it.
    """
    global _last_clf
    second = epoch_ms // 1000
    last = _last_clf
    if last[0] == second:
        return last[1]
    t = time.gmtime(second)
    text = (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    _last_clf = (second, text)
    return text


@lru_cache(maxsize=64)
def domain_prefix(host: str) -> str:
    """The first label of the host name (without port), as $context.domainPrefix."""
    if host.startswith("["):  # IPv6 literal: there are no labels to take apart
        return host.partition("]")[0] + "]"
    return host.partition(":")[0].partition(".")[0]


def status_code(value: Any) -> int:
    """A proxy response's statusCode, which must be an int HTTP status (bool is not)."""
    if type(value) is not int or not 100 <= value <= 599:
        raise MalformedResponse(f"statusCode must be an integer from 100 to 599, got {value!r}")
    return value


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # \Z: "$" matches before a final \n
_TOKENS: set[str] = set()  # header names found to be tokens (most responses repeat them)
MAX_TOKENS = 1024


def header_value(name: Any, value: Any) -> str:
    """One header value as text; a handler may give a string, number or boolean.

    A name that is not an HTTP token, or a value with CR, LF or NUL, makes the response
    malformed: it could not be sent, and must never split into two headers.
    """
    if type(name) is not str or name not in _TOKENS:
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise MalformedResponse(f"header name {name!r} is not a valid HTTP header name")
        if len(_TOKENS) >= MAX_TOKENS:
            _TOKENS.clear()
        _TOKENS.add(name)
    if isinstance(value, str):
        if "\r" in value or "\n" in value or "\x00" in value:
            raise MalformedResponse(f"header {name!r}: value contains CR, LF or NUL")
        return value
    # bool first: it is an int too, and JSON spells it true/false, as API Gateway sees it.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise MalformedResponse(
        f"header {name!r}: value must be a string, number or boolean, not {type(value).__name__}"
    )


def optional_dict(result: dict[str, Any], key: str) -> dict[Any, Any] | None:
    """result[key] when it is an object; None when absent or null (Go SDKs send null)."""
    value = result.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise MalformedResponse(f"{key} must be an object, not {type(value).__name__}")


def optional_bool(result: dict[str, Any], key: str) -> bool:
    value = result.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise MalformedResponse(f"{key} must be a boolean, not {type(value).__name__}")


def response_body(result: dict[str, Any], base64_encoded: bool) -> bytes:
    """The bytes of a proxy response's body (a string or null), base64-decoded if flagged."""
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, not {type(body).__name__}")
    if base64_encoded:
        if "\n" in body:  # MIME-style encoders (base64.encodebytes) wrap lines
            body = body.replace("\r", "").replace("\n", "")
        try:
            # validate=True: garbage must surface as a malformed response, not as b"".
            return base64.b64decode(body, validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise MalformedResponse(f"isBase64Encoded but body is not base64: {exc}") from exc
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (legal in JSON text) has no UTF-8 form; Java, and so API
        # Gateway, writes "?" for it rather than failing the response.
        return body.encode("utf-8", "replace")


def has_header(headers: list[tuple[str, str]], lower_name: str) -> bool:
    size = len(lower_name)  # most names differ in length: no lower() for them
    return any(len(name) == size and name.lower() == lower_name for name, _ in headers)


def json_response(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", _JSON)], body)


def not_found() -> HttpResponse:
    return json_response(404, _NOT_FOUND)


def too_large() -> HttpResponse:
    return json_response(413, _TOO_LARGE)
