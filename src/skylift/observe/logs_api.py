"""Stored logs on the control API, as CloudWatch Logs' FilterLogEvents answers them, for
`skylift logs --url` and any tool that cannot read the server's state folder.

`GET /_skylift/logs?function=&since=&filter=&request_id=&limit=&next_token=` (or the
same names in a JSON object `POST`ed there, for a token too long for a URL) answers
`{"events": [...], "nextForwardToken": T}` and, when more events are stored than the
page held, `"nextToken": T` too (FilterLogEvents: ask again with it; no `nextToken`,
you have them all). Each event is `{"logGroupName", "logStreamName", "timestamp",
"message", "ingestionTime", "eventId"}`, oldest first. `nextForwardToken` (GetLogEvents'
name) is where the page ended: asked with it later, the answer holds what was written
since, so a follower polls with it and never sees an event twice nor misses one.

`since` is `10m`, `2h`, `1d`, `1w` (before the server's clock), an ISO 8601 time or epoch
milliseconds (the answer's `startTime`: what a relative one meant, to ask the next pages);
`filter` CloudWatch's term syntax; a page holds at most `limit` events (1 to 10,000, the
default) and about 1 MB of messages, as FilterLogEvents'; a page also stops once it
has read 8 MB of stored logs, so a rare match costs a bounded time a request: such a
page may hold few events or none, and has a `nextToken` (as FilterLogEvents' may). A bad
function name, time, pattern, limit or token (or a token longer than the files stored
could need), or a function that is neither served nor has stored logs, answers 400
`{"message": ...}` saying what was wrong.

It sits in front of the control API (same prefix, same guard) and passes every other
path on. A token is the reader's positions in the files (`logs_read.Reader`),
compressed: it holds no secret, and names only files the query may read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

from skylift.asgi_json import read_body, send_json
from skylift.asgi_types import Asgi, Receive, Scope, Send
from skylift.errors import SkyliftError
from skylift.observe import logs_layout as layout
from skylift.observe.logs_query import BadQuery, query
from skylift.observe.logs_read import Position, Reader
from skylift.spec import CONTROL_PREFIX

PATH = CONTROL_PREFIX + "logs"
MAX_LIMIT = 10_000  # events in a page, as FilterLogEvents
MAX_PAGE_BYTES = 1024 * 1024  # ... and about this much of their messages
MAX_BODY = 4 * 1024 * 1024  # a POSTed query: its token grows with the files read
MAX_SCAN = 8 * 1024 * 1024  # ... and once this much of the stored logs is read
# A token holds at most a position for each stored file (and for a few more: files
# retention removed since it was given), each at most ENTRY bytes of JSON.
ENTRY = 320  # a 140-letter function, a file name, three numbers
SPARE_ENTRIES = 1000
_NAMES = ("function", "since", "filter", "request_id", "limit", "next_token")


class LogsApi:
    def __init__(self, state_dir: Path, functions: Mapping[str, object], control: Asgi) -> None:
        self.directory = layout.root(state_dir)
        self.functions = functions  # the functions served (a name there may have no logs)
        self.control = control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path != PATH:
            await self.control(scope, receive, send)
            return
        method = scope["method"]
        if method == "POST":
            body = await read_body(receive, MAX_BODY)
            try:
                asked = orjson.loads(body) if body else {}
                if body is None or not isinstance(asked, dict):
                    raise ValueError
            except ValueError:
                await send_json(
                    send,
                    400,
                    {
                        "message": f"POST {PATH} takes a JSON object of at most {MAX_BODY} "
                        f"bytes with any of {', '.join(_NAMES)}"
                    },
                )
                return
        elif method in ("GET", "HEAD"):
            raw = scope.get("query_string", b"").decode("latin-1")
            asked = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        else:
            await send_json(send, 405, {"message": f"{PATH} answers GET and POST, not {method}"})
            return
        try:
            answer = await asyncio.to_thread(self.filter, asked)
        except SkyliftError as exc:
            await send_json(send, 400, {"message": str(exc)})
            return
        await send_json(send, 200, answer)

    def filter(self, asked: dict[str, Any]) -> dict[str, Any]:
        """One page of events, as FilterLogEvents answers; BadQuery saying what is wrong."""
        unknown = sorted(set(asked) - set(_NAMES))
        if unknown:
            raise BadQuery(f"unknown parameters {', '.join(unknown)}: use {', '.join(_NAMES)}")
        text = {k: v if v is None or isinstance(v, str) else str(v) for k, v in asked.items()}
        function = text.get("function") or None
        wanted = query(
            function, text.get("since"), text.get("filter") or "", text.get("request_id")
        )
        if (
            function is not None
            and function not in self.functions
            and not (self.directory / function).is_dir()
        ):
            known = ", ".join(sorted(self.functions)) or "none"
            raise BadQuery(
                f"function {function!r} is not served here and has no stored logs "
                f"(functions: {known}): name one of them, or none for every function"
            )
        limit = _limit(asked.get("limit"))
        reader = Reader(self.directory, wanted)
        token = text.get("next_token")
        if token:
            files = len(layout.log_files(self.directory, function))
            reader.resume(decode(token, files))
        events, more = reader.page(limit, MAX_PAGE_BYTES, MAX_SCAN)
        position = encode(reader.positions())
        answer: dict[str, Any] = {
            "events": [{**e.to_dict(), "eventId": e.event_id} for e in events],
            "nextForwardToken": position,
        }
        if more:
            answer["nextToken"] = position
        if wanted.since is not None:  # `10m` resolved once: ask with it for the next pages
            answer["startTime"] = wanted.since
        return answer


def _limit(value: object) -> int:
    if value is None or value == "":
        return MAX_LIMIT
    try:
        limit = int(str(value))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        raise BadQuery(f"limit {value!r} is not a whole number from 1 to {MAX_LIMIT}") from None
    return limit


def encode(positions: dict[str, Position]) -> str:
    """The positions as a token: JSON, deflated, URL-safe base64."""
    packed = {name: list(position) for name, position in positions.items()}
    return base64.urlsafe_b64encode(zlib.compress(orjson.dumps(packed), 9)).decode().rstrip("=")


def decode(token: str, files: int = 0) -> dict[str, Position]:
    """The positions a token holds; BadQuery when it is not one this API gave, or is
    longer than positions in `files` stored files could be (it is not read further)."""
    # Bytes of JSON: room for every file stored now and more (files may have gone since
    # the token was given: a token is never refused for naming them), at least 1 MiB.
    most = max(64 + (files + SPARE_ENTRIES) * ENTRY, 1 << 20)
    too_long = BadQuery(
        f"next_token is longer than the positions in the {files} log files stored could "
        "need: pass the nextToken or nextForwardToken of a previous answer, unchanged "
        "(or none to start over)"
    )
    if len(token) > most * 4 // 3 + 64:  # base64 of deflated JSON: never much longer
        raise too_long
    try:
        deflated = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(deflated, most)
        if inflater.unconsumed_tail:
            raise too_long
        if not inflater.eof:
            raise ValueError("cut")
        packed = orjson.loads(raw)
        if not isinstance(packed, dict):
            raise ValueError("not positions")
        positions: dict[str, Position] = {}
        for name, value in packed.items():
            offset, skip, ident = value
            if not all(type(n) is int and 0 <= n < 2**53 for n in (offset, skip, ident)):
                raise ValueError(name)
            positions[name] = (offset, skip, ident)
    except (ValueError, TypeError, AttributeError, binascii.Error, zlib.error):
        raise BadQuery(
            "next_token is not a token this server gave: pass the nextToken or "
            "nextForwardToken of a previous answer, unchanged (or none to start over)"
        ) from None
    return positions
