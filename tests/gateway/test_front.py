"""The HTTP front's hardening, through raw sockets against `skylift up`: what a client
that stops, stalls, floods or disguises its requests gets, and what everyone else gets
meanwhile. (uvicorn, the front before, failed each of these.)"""

from __future__ import annotations

import re
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest
from raw_http import close_opened, connect, read_response

from skylift.gateway.front import connection_cap
from skylift.testing import serve

APP = Path(__file__).with_name("gateway_app.py")


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    directory = tmp_path_factory.mktemp("front")
    shutil.copy(APP, directory / "app.py")
    options = ["--quiet", "--keep-alive", "1", "--header-timeout", "1", "--max-connections", "300"]
    with serve(str(directory), options=options) as base:
        yield base


def _invocations(url: str, function: str) -> float:
    text = httpx.get(url + "/_skylift/metrics", timeout=10).text
    found = re.search(
        rf'^skylift_invocations_total{{function="{function}"[^}}]*}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b"" or _drain_until_closed(sock)
    except (ConnectionResetError, BrokenPipeError):
        return True


def _drain_until_closed(sock: socket.socket) -> bool:
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return True


def test_a_body_cut_short_never_invokes_the_function(url):
    httpx.post(url + "/v1/warm", content=b"{}", timeout=10)
    before = _invocations(url, "echo_v1")
    cut = connect(url)
    cut.sendall(
        b"POST /v1/cut HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789"
    )
    cut.close()
    chunked = connect(url)
    chunked.sendall(
        b"POST /v1/cut HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n"
    )
    chunked.close()
    # A whole request after them: whatever the cut ones caused has happened by its answer.
    assert httpx.post(url + "/v1/whole", content=b"{}", timeout=10).status_code == 200
    assert _invocations(url, "echo_v1") == before + 1


def test_a_chunked_body_reaches_the_function_whole(url):
    sock = connect(url)
    sock.sendall(
        b"POST /v2/chunked HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b'"body": "hello world"' in response


def test_a_response_of_unknown_length_is_sent_chunked(url):
    # The dashboard's event stream: an ASGI response whose body comes in parts, with no
    # length, framed by the front as chunks (each "SIZE-in-hex CRLF data CRLF").
    sock = connect(url)
    port = url.rsplit(":", 1)[1]
    sock.sendall(
        b"GET /_skylift/dashboard/events HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n" % port.encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, data = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"content-length" not in head.lower()
    for _ in range(2):  # the first update, and the next a second later
        while b"\r\n" not in data:
            data += sock.recv(65536)
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        while len(data) < size + 2:
            data += sock.recv(65536)
        chunk, end, data = data[:size], data[size : size + 2], data[size + 2 :]
        assert end == b"\r\n" and chunk.startswith(b"event: snapshot\n"), chunk[:80]


def test_request_headers_over_10240_bytes_get_431_and_under_them_are_served(url):
    sock = connect(url)
    sock.sendall(
        b"GET /v2/big HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 11_000 + b"\r\n\r\n"
    )
    response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 431 ")
    assert _closed(sock)
    fits = httpx.get(url + "/v2/big", headers={"X-Big": "a" * 9_000}, timeout=10)
    assert fits.status_code == 200


def test_a_client_streaming_a_huge_header_is_cut_off_and_others_are_served(url):
    sock = connect(url)
    sock.sendall(b"GET /v2/huge HTTP/1.1\r\nHost: localhost\r\nX-Huge: ")
    sent = 0
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        while sent < 100_000_000:
            sock.sendall(b"a" * 65536)
            sent += 65536
            if sent % (1 << 20) == 0:
                assert httpx.get(url + "/v2/other", timeout=10).status_code == 200
    # Cut off near the limit, not after the whole 100 MB (socket buffers hold a few MB).
    assert sent < 20_000_000


def test_a_head_that_takes_too_long_gets_408_and_others_are_served(url):
    slow = connect(url)
    slow.sendall(b"GET /v2/slowloris HTTP/1.1\r\nHost: localhost\r\n")
    slow.settimeout(0.3)
    answer = b""
    for line in range(30):  # a header line every 0.3 s, for up to 9 s
        try:
            answer = slow.recv(65536)
            break
        except TimeoutError:
            slow.sendall(b"X-Line-%d: more\r\n" % line)
        assert httpx.get(url + "/v2/other", timeout=10).status_code == 200
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_many_slowloris_connections_are_all_closed_and_others_still_served(url):
    lorises = [connect(url) for _ in range(200)]
    for sock in lorises:
        sock.sendall(b"GET /v2/loris HTTP/1.1\r\nHost: localhost\r\n")
    for _ in range(3):
        for sock in lorises:
            try:
                sock.sendall(b"X-Drip: 1\r\n")
            except OSError:
                pass
        for _ in range(5):
            assert httpx.get(url + "/v2/other", timeout=10).status_code == 200
    for sock in lorises:  # each gets its 408 at the header deadline (1 s here), then EOF
        sock.settimeout(15)
        assert _closed(sock)
        sock.close()


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(url):
    sock = connect(url)
    sock.sendall(b"GET /v2/idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(sock).startswith(b"HTTP/1.1 200 ")
    assert _closed(sock)  # --keep-alive 1: closed by the server, well within the 15 s


def test_pipelined_requests_are_answered_in_order(url):
    sock = connect(url)
    sock.sendall(
        b"GET /v2/first HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /_skylift/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /v2/third HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    data = b""
    while data.count(b"HTTP/1.1 ") < 3 or not data.endswith(b"}"):
        data += sock.recv(65536)
    first, second, third = data.split(b"HTTP/1.1 ")[1:]
    assert b'"rawPath": "/v2/first"' in first
    assert b'{"status":"ok"}' in second
    assert b'"rawPath": "/v2/third"' in third


def test_expect_100_continue_is_answered_before_the_body_is_sent(url):
    sock = connect(url)
    sock.sendall(
        b"POST /v2/continue HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    sock.sendall(b"hello")
    response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 200 ") and b'"body": "hello"' in response


def test_head_gets_the_length_without_the_body(url):
    sock = connect(url)
    sock.sendall(b"HEAD /v2/head HTTP/1.1\r\nHost: localhost\r\n\r\n")
    sock.settimeout(2)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert int(re.search(rb"content-length: (\d+)", head).group(1)) > 0
    assert head.endswith(b"\r\n\r\n")  # nothing after the headers
    sock.sendall(b"GET /_skylift/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(sock).startswith(b"HTTP/1.1 200 ")  # still in step


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("note=%2Fs3%2Faws4_request", {}),
        ("q=X-Amz-Credential%3DAKID%2F20240101%2Fus-east-1%2Fs3%2Faws4_request", {}),
        ("note=AWSAccessKeyId=x", {}),
        ("note=%2Fsqs%2Faws4_request", {}),
        ("", {"Authorization": "Bearer abc/s3/aws4_request"}),
        ("", {"X-Note": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/s3/aws4_request"}),
        ("", {"Referer": "http://bucket.s3.localhost/"}),
        ("", {"X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": "application/json"}),
    ],
)
def test_app_routes_whose_requests_merely_mention_aws_markers_stay_the_apps(url, query, headers):
    response = httpx.get(f"{url}/v2/mention?{query}", headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json()["rawPath"] == "/v2/mention"


def test_over_the_connection_cap_new_clients_get_503_and_the_server_recovers(tmp_path):
    shutil.copy(APP, tmp_path / "app.py")
    options = ["--quiet", "--keep-alive", "30", "--max-connections", "8"]
    with serve(str(tmp_path), options=options) as base:
        held = [connect(base) for _ in range(8)]
        for sock in held:  # each holds a connection: a request answered, kept alive
            sock.sendall(b"GET /_skylift/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        extra = connect(base)
        assert read_response(extra).startswith(b"HTTP/1.1 503 ")
        held.pop().close()
        time.sleep(0.2)  # the server sees the close
        again = connect(base)
        again.sendall(b"GET /_skylift/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(again).startswith(b"HTTP/1.1 200 ")
        for sock in held:
            sock.close()


def test_the_connection_cap_stays_below_the_file_descriptor_limit():
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert 0 < connection_cap() < soft
    assert connection_cap(10) == 10


@pytest.mark.parametrize("path", ["/%5fskylift/status", "//_skylift/status", "/./_skylift/status"])
def test_the_control_prefix_cannot_be_disguised(tmp_path, monkeypatch, path):
    shutil.copy(APP, tmp_path / "app.py")
    monkeypatch.setenv("SKYLIFT_TOKEN", "sesame")
    with serve(str(tmp_path), options=["--quiet"]) as base:
        sock = connect(base)
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode())
        refused = read_response(sock)
        assert refused.startswith(b"HTTP/1.1 403 "), refused[:200]
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer sesame\r\n\r\n"
            % path.encode()
        )
        allowed = read_response(sock)
        assert allowed.startswith(b"HTTP/1.1 200 ") and b"functions" in allowed


def test_past_the_file_descriptor_limit_clients_get_503_not_a_silent_queue(tmp_path):
    import resource

    shutil.copy(APP, tmp_path / "app.py")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (400, hard))  # inherited by `skylift up`
    try:
        server = serve(str(tmp_path), options=["--quiet", "--keep-alive", "30"])
        base = server.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        import select

        socks = [connect(base) for _ in range(400)]  # more than the server may hold
        time.sleep(1)
        # Refused ones are answered at once, before any request; held ones wait for one.
        refused, _, _ = select.select(socks, [], [], 1)
        held = [sock for sock in socks if sock not in refused]
        assert refused and held
        assert all(read_response(sock).startswith(b"HTTP/1.1 503 ") for sock in refused)
        for sock in held:
            sock.sendall(b"GET /_skylift/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert all(read_response(sock).startswith(b"HTTP/1.1 200 ") for sock in held)
        close_opened()
        time.sleep(0.2)
        assert httpx.get(base + "/_skylift/health", timeout=10).status_code == 200
    finally:
        server.__exit__(None, None, None)


def test_a_slow_reader_of_a_large_object_gets_it_whole_and_others_are_served(url):
    s3 = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    assert httpx.put(url + "/slowbucket", headers=s3, timeout=10).status_code == 200
    blob = bytes(range(256)) * (24 * 4096)  # 24 MiB: far past the socket buffers
    put = httpx.put(url + "/slowbucket/blob", content=blob, headers=s3, timeout=30)
    assert put.status_code == 200
    sock = connect(url)
    sock.sendall(
        b"GET /slowbucket/blob HTTP/1.1\r\nHost: localhost\r\n%s\r\n"
        % b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in s3.items())
    )
    time.sleep(1)  # not reading: the server must wait, not buffer the object or stall
    assert httpx.get(url + "/v2/meanwhile", timeout=10).status_code == 200
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    chunked = b"transfer-encoding: chunked" in head.lower()
    pieces, size, tail = [body], len(body), body[-7:]
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        pieces.append(chunk)
        size += len(chunk)
        tail = (tail + chunk)[-7:]
        if (not chunked and size >= len(blob)) or (chunked and tail == b"\r\n0\r\n\r\n"):
            break
    body = b"".join(pieces)
    if chunked:
        parts, at = [], 0
        while True:
            end = body.index(b"\r\n", at)
            size = int(body[at:end], 16)
            if size == 0:
                break
            parts.append(body[end + 2 : end + 2 + size])
            at = end + 4 + size
        body = b"".join(parts)
    assert body == blob


def test_a_repeated_request_is_judged_afresh_by_its_host_and_aws_markers(url):
    # The front remembers where a method, target and Host went; a repeat that differs
    # in its Host or carries an AWS API's marker must not follow the remembered route.
    sock = connect(url)
    plain = b"GET /v2/again HTTP/1.1\r\nHost: localhost\r\n\r\n"
    signed = (
        b"GET /v2/again HTTP/1.1\r\nHost: localhost\r\nAuthorization: AWS4-HMAC-SHA256 "
        b"Credential=AKID/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, "
        b"Signature=00\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\r\n"
    )
    foreign = b"GET /v2/again HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    for request, function in [(plain, True), (plain, True), (signed, False), (plain, True)]:
        sock.sendall(request)
        answer = read_response(sock)
        assert (b'"rawPath":"/v2/again"' in answer.replace(b" ", b"")) == function, answer
    sock.sendall(foreign)
    assert not read_response(sock).startswith(b"HTTP/1.1 200 ")
    again = connect(url)
    again.sendall(plain)
    assert read_response(again).startswith(b"HTTP/1.1 200 ")
