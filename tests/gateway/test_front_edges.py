"""The HTTP front and function URLs at their edges, through raw sockets against `skylift
up` serving the function-url app: cut uploads, stalled bodies, early answers, odd
request-targets and hosts, pipelined garbage."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from raw_http import connect, read_response

from skylift.asgi_types import Message, Receive, Scope
from skylift.function_urls import url_id
from skylift.gateway import asgi, function_url
from skylift.testing import ServerLog, serve

APP = Path(__file__).parents[1] / "sam_apps" / "function-url"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerLog]]:
    root = tmp_path_factory.mktemp("edges") / "app"
    shutil.copytree(APP, root)
    log = ServerLog()
    options = ["--keep-alive", "1", "--header-timeout", "1"]
    with serve(str(root), log=log, timeout=60, options=options) as url:
        yield url, log


def _host(url: str, function: str) -> str:
    return f"{url_id(function, 'us-east-1')}.lambda-url.localhost:{urlsplit(url).port}"


def _rest(sock: socket.socket) -> bytes:
    """Everything until the server closes (a timeout fails the test)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _invocations(url: str, function: str) -> float:
    text = httpx.get(url + "/_skylift/metrics", timeout=10).text
    found = re.search(
        rf'^skylift_invocations_total{{function="{function}"[^}}]*}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_a_function_url_upload_cut_short_never_invokes_the_function(
    server: tuple[str, ServerLog],
) -> None:
    url, _ = server
    assert httpx.post(url + "/_skylift/url/Public/warm", content=b"{}").status_code == 200
    before = _invocations(url, "Public")
    cut = connect(url)
    cut.sendall(
        b"POST /_skylift/url/Public/cut HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 100\r\n\r\n0123456789"
    )
    cut.close()
    # A whole request after it: whatever the cut one caused has happened by its answer.
    assert httpx.post(url + "/_skylift/url/Public/whole", content=b"{}").status_code == 200
    assert _invocations(url, "Public") == before + 1


def test_the_keep_alive_timeout_applies_after_an_early_answer(
    server: tuple[str, ServerLog],
) -> None:
    url, _ = server
    sock = connect(url)
    # The guard refuses a foreign Host before the body is read; the body then arrives.
    sock.sendall(b"POST /items HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 20\r\n\r\n0123")
    assert read_response(sock).startswith(b"HTTP/1.1 421 ")
    sock.sendall(b"4567890123456789")
    assert _rest(sock) == b""  # --keep-alive 1: closed by the server, well within 15 s


def test_a_body_that_stalls_gets_408_and_one_that_progresses_is_served(
    server: tuple[str, ServerLog],
) -> None:
    url, _ = server
    stalled = connect(url)
    stalled.sendall(
        b"POST /_skylift/url/Public/slow HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 1000000\r\n\r\n0123456789"
    )
    steady = connect(url)
    steady.sendall(
        b"POST /_skylift/url/Public/steady HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 6\r\n\r\nab"
    )
    for piece in (b"cd", b"ef"):  # each within --header-timeout (1 s) of the one before
        time.sleep(0.6)
        steady.sendall(piece)
    assert read_response(steady).startswith(b"HTTP/1.1 200 ")
    answer = _rest(stalled)  # no byte after the first ten: 408 and closed, within 15 s
    assert answer.startswith(b"HTTP/1.1 408 ")


def _get(url: str, target: str, host: str = "localhost") -> tuple[int, bytes]:
    sock = connect(url)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target.encode(), host.encode()))
    response = read_response(sock)
    return int(response.split(b" ", 2)[1]), response.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    ("target", "raw_path"),
    [
        ("/_skylift/url/Public/a%20b", "/a%20b"),
        ("/%5fskylift/url/Public/a%20b", "/a%20b"),
        ("//_skylift/url/Public/x", "/x"),
        ("/_skylift/./url/Public/x/", "/x/"),
    ],
)
def test_a_url_by_path_is_found_as_routing_decides(
    server: tuple[str, ServerLog], target: str, raw_path: str
) -> None:
    url, _ = server
    status, body = _get(url, target)
    assert status == 200
    assert json.loads(body)["rawPath"] == raw_path


def test_a_url_by_host_is_found_whatever_the_case_of_the_host(
    server: tuple[str, ServerLog],
) -> None:
    url, _ = server
    status, body = _get(url, "/items", _host(url, "Public").upper())
    assert status == 200
    assert json.loads(body)["rawPath"] == "/items"


@pytest.mark.parametrize(
    "target",
    ["/2015-03-31/functions/Public/invocations", "/_skylift/health", "/%5fskylift/functions"],
)
def test_a_url_by_host_gets_every_path_even_lambdas_and_skylifts(
    server: tuple[str, ServerLog], target: str
) -> None:
    url, _ = server
    status, body = _get(url, target, _host(url, "Public"))
    assert status == 200
    assert json.loads(body)["rawPath"] == target  # the function's, not Lambda's or skylift's


@pytest.mark.parametrize("target", [b"foo", b"http://[x/", b"http://[::1/x"])
def test_an_invalid_request_target_gets_400_without_a_traceback(
    server: tuple[str, ServerLog], target: bytes
) -> None:
    url, log = server
    sock = connect(url)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target)
    assert read_response(sock).startswith(b"HTTP/1.1 400 ")
    assert httpx.get(url + "/_skylift/health").status_code == 200  # the log is written by now
    assert "Traceback" not in log.text
    assert "reading a request failed" not in log.text


@pytest.mark.parametrize(
    "after",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /_skylift/url/Public/b HTTP/1.1\r\nHost: localhost\r\nX-Big: %s\r\n\r\n"
        % (b"x" * 11_000),
    ],
    ids=["garbage", "431"],
)
def test_a_bad_request_pipelined_behind_good_ones_waits_for_their_answers(
    server: tuple[str, ServerLog], after: bytes
) -> None:
    url, _ = server
    sock = connect(url)
    sock.sendall(
        b"GET /_skylift/url/Public/first HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /_skylift/url/Public/second HTTP/1.1\r\nHost: localhost\r\n\r\n" + after
    )
    data = _rest(sock)
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200", b"200", b"400" if b"NOT" in after else b"431"]
    assert b'"rawPath": "/first"' in answers[0]
    assert b'"rawPath": "/second"' in answers[1]


@pytest.mark.parametrize(
    ("read_body", "marker"),
    [
        (asgi._read_body, asgi.DISCONNECTED),
        (function_url._read_body, function_url.DISCONNECTED),
    ],
    ids=["gateway", "function_url"],
)
def test_an_asgi_body_cut_by_a_disconnect_is_never_taken_as_whole(
    read_body: Callable[[Scope, Receive], Awaitable[object]], marker: object
) -> None:
    """The ASGI path (in-process clients) reads bodies as the front does: a disconnect
    mid-body is no end of it."""
    messages: list[Message] = [
        {"type": "http.request", "body": b"0123456789", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    scope: Scope = {"type": "http", "headers": [(b"content-length", b"100")]}
    assert asyncio.run(read_body(scope, receive)) is marker
