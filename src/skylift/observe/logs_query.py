"""A logs query from its words, as `skylift logs` and the logs API take them: a function
name, `--since` (10m, 2h, 1d, 1w, or an ISO 8601 time), a filter pattern and a request
id. Whatever is wrong is said in one `BadQuery`, the same locally and from the server."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from skylift.errors import SkyliftError
from skylift.observe.log_filter import parse
from skylift.observe.logs_read import Query

FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,140}")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$", re.ASCII)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BadQuery(SkyliftError):
    """Raised when a function name, a time or a filter pattern cannot be read."""


def since_ms(text: str, now: float | None = None) -> int:
    """`10m`, `2h`, `30s`, `1d`, `1w` ago, an ISO 8601 time, or epoch milliseconds (as
    CloudWatch's startTime), as epoch milliseconds (0 to 2**53 - 1: JSON's exact
    integers); BadQuery for anything else."""
    now = time.time() if now is None else now
    word = text.strip()
    shown = repr(text if len(text) <= 40 else text[:36] + "...")
    try:
        if word.isascii() and word.isdigit():
            found = int(word)
        elif match := _DURATION.match(word):
            ago = float(match.group(1)) * _UNITS[match.group(2)]
            found = max(0, int((now - ago) * 1000))  # before 1970: everything
        else:
            moment = datetime.fromisoformat(word.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            found = int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise BadQuery(
            f"--since {shown} is neither a duration (10m, 2h, 30s, 1d, 1w) nor an ISO 8601 "
            "time (2024-01-31T12:00:00Z) nor epoch milliseconds"
        ) from None
    if not 0 <= found < 2**53:
        raise BadQuery(
            f"--since {shown} is out of range: a time from 1970 on, or epoch milliseconds "
            f"below {2**53}"
        )
    return found


def query(
    function: str | None = None,
    since: str | None = None,
    pattern: str = "",
    request_id: str | None = None,
) -> Query:
    """The query these words ask for; BadQuery saying what is wrong with them."""
    if function is not None and not FUNCTION_NAME.fullmatch(function):
        raise BadQuery(
            f"{function!r} is not a function name: use letters, digits, - and _ (at most 140)"
        )
    try:
        found = parse(pattern)
    except SkyliftError as exc:
        raise BadQuery(str(exc)) from None
    return Query(
        function=function,
        since=since_ms(since) if since else None,
        filter=found,
        request_id=request_id or None,
    )
