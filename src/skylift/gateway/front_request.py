"""What a request is for, decided when the parser has read its head: a function route's
request (read whole, then `Gateway.dispatch`) or the ASGI gateway's (the AWS APIs, the
control API, function URLs, metrics, docs, 404s and refusals). Used by `connection.py`."""

from __future__ import annotations

from urllib.parse import unquote

import httptools

from skylift.events.http import HttpRequest
from skylift.gateway.asgi import MAX_BODY
from skylift.gateway.front_asgi import AsgiCycle
from skylift.gateway.front_function import FunctionCycle
from skylift.gateway.front_types import Link
from skylift.gateway.routing import aws_service, control_path


class BadTarget(Exception):
    """Raised from a parser callback: the request-target is no URL path (400)."""


def new_cycle(
    conn: Link, target: bytes, names: list[bytes], headers: list[tuple[bytes, bytes]]
) -> FunctionCycle | AsgiCycle:
    """The cycle that answers a request whose head the parser has just read: a function
    route's (`FunctionCycle`), or the ASGI gateway's (`AsgiCycle`) for everything else.
    Raises `BadTarget` when the request-target is no URL."""
    front = conn.front
    parser = conn.parser
    method = parser.get_method().decode("ascii")
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise BadTarget from None  # e.g. `GET foo HTTP/1.1`: 400
    raw_path: bytes = url.path or b"/"
    query: bytes = url.query or b""
    path = raw_path.decode("latin-1")
    if "%" in path:
        path = unquote(path)
    gateway = front.gateway
    control = control_path(path)
    matched = None
    if control is not None:
        path = control
    elif not gateway.services or aws_service(path, headers, query) not in gateway.services:
        matched = gateway.router.match(method, path)
    host = None
    for name, value in headers:
        if name == b"host":
            host = value
            break
    keep_alive = parser.should_keep_alive()
    expect = any(n == b"expect" and v.lower() == b"100-continue" for n, v in headers)
    if matched is not None and (gateway.guard is None or gateway.guard.host_allowed(host)):
        length = next((v for n, v in headers if n == b"content-length"), None)
        source_ip = conn.client[0] if conn.client else "127.0.0.1"
        try:
            decoded = [(n.decode(), v.decode()) for n, (_, v) in zip(names, headers, strict=True)]
        except UnicodeDecodeError:
            decoded = [
                (n.decode("latin-1"), v.decode("latin-1"))
                for n, (_, v) in zip(names, headers, strict=True)
            ]
        version = parser.get_http_version()
        request = HttpRequest(
            method,
            raw_path.decode("latin-1"),
            query.decode("latin-1"),
            decoded,
            b"",
            source_ip,
            "HTTP/" + version,
            host.decode("latin-1") if host else f"{front.host}:{front.port}",
        )
        function = FunctionCycle(conn, matched, request)
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            function.size = -1  # refused before its body is read
        cycle: FunctionCycle | AsgiCycle = function
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
