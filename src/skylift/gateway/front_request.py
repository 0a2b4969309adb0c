"""What a request is for, decided when the parser has read its head: a function route's
request (read whole, then `Gateway.dispatch`) or the ASGI gateway's (the AWS APIs, the
control API, function URLs, metrics, docs, 404s and refusals). Used by `connection.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

import httptools

from skylift.gateway.asgi import MAX_BODY
from skylift.gateway.front_asgi import AsgiCycle
from skylift.gateway.front_decided import MAX_TARGET
from skylift.gateway.front_function import FunctionCycle
from skylift.gateway.front_types import Link
from skylift.gateway.routing import aws_service, control_path

if TYPE_CHECKING:
    from skylift.gateway.front_function import Matched


class BadTarget(Exception):
    """Raised from a parser callback: the request-target is no URL path (400)."""


# Header names that can make a request an AWS API's (`routing.aws_service`) whatever its
# path and Host: a request with none of them is decided by its method, target and Host.
_MARKERS = frozenset({b"authorization", b"x-amz-target", b"x-amz-content-sha256"})


def new_cycle(
    conn: Link,
    target: bytes,
    names: list[bytes],
    headers: list[tuple[bytes, bytes]],
) -> FunctionCycle | AsgiCycle:
    """The cycle that answers a request whose head the parser has just read: a function
    route's (`FunctionCycle`), or the ASGI gateway's (`AsgiCycle`) for everything else.
    Raises `BadTarget` when the request-target is no URL."""
    front = conn.front
    parser = conn.parser
    raw_method: bytes = parser.get_method()
    method = raw_method.decode("ascii")
    host = length = None
    hosts = 0
    expect = marked = False
    for name, value in headers:
        if name == b"host":
            if host is None:
                host = value
            hosts += 1
        elif name == b"content-length":
            if length is None:
                length = value
        elif name == b"expect":
            expect = expect or value.lower() == b"100-continue"
        elif name in _MARKERS:
            marked = True
    gateway = front.gateway
    key = None
    found = None
    if not marked and hosts <= 1 and len(target) <= MAX_TARGET:
        key = (raw_method, target, host)
        found = front.decided.get(gateway, key)
    if found is not None:
        route, raw_path_text, query_text = found
        cycle: FunctionCycle | AsgiCycle = _function(
            conn, route, method, raw_path_text, query_text, names, headers, host, length
        )
        cycle.keep_alive = parser.should_keep_alive()
        cycle.continue_wanted = expect
        return cycle
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise BadTarget from None  # e.g. `GET foo HTTP/1.1`: 400
    raw_path: bytes = url.path or b"/"
    query: bytes = url.query or b""
    path = raw_path.decode("latin-1")
    if "%" in path:
        path = unquote(path)
    control = control_path(path)
    matched: Matched | None = None
    if control is not None:
        path = control
    elif not gateway.services or aws_service(path, headers, query) not in gateway.services:
        matched = gateway.router.match(method, path)
    keep_alive = parser.should_keep_alive()
    if matched is not None and (gateway.guard is None or gateway.guard.host_allowed(host)):
        raw_path_text, query_text = raw_path.decode("latin-1"), query.decode("latin-1")
        if key is not None:
            front.decided.put(key, (matched, raw_path_text, query_text))
        cycle = _function(
            conn, matched, method, raw_path_text, query_text, names, headers, host, length
        )
    else:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": parser.get_http_version(),
            "server": (front.host, front.port),
            "client": conn.client,
            "scheme": "http",
            "method": method,
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "skylift.header_names": names,
            "state": {},
        }
        cycle = AsgiCycle(conn, scope, front.app)
    cycle.keep_alive = keep_alive
    cycle.continue_wanted = expect
    return cycle


def _function(
    conn: Link,
    matched: Matched,
    method: str,
    raw_path: str,
    query: str,
    names: list[bytes],
    headers: list[tuple[bytes, bytes]],
    host: bytes | None,
    length: bytes | None,
) -> FunctionCycle:
    front = conn.front
    client = conn.client
    try:
        decoded = [(n.decode(), v.decode()) for n, (_, v) in zip(names, headers, strict=True)]
    except UnicodeDecodeError:
        decoded = [
            (n.decode("latin-1"), v.decode("latin-1"))
            for n, (_, v) in zip(names, headers, strict=True)
        ]
    head = (
        method,
        raw_path,
        query,
        decoded,
        client[0] if client else "127.0.0.1",
        "HTTP/" + conn.parser.get_http_version(),
        host.decode("latin-1") if host else f"{front.host}:{front.port}",
    )
    function = FunctionCycle(conn, matched, head)
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        function.size = -1  # refused before its body is read
    return function
