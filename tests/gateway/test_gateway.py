"""The HTTP gateway through real HTTP on loopback: API Gateway events, responses,
limits and errors as AWS gives them."""

from __future__ import annotations

import base64
import re
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from skylift.testing import serve

APP = Path(__file__).with_name("gateway_app.py")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
SHORT_ID = re.compile(r"[A-Za-z0-9_-]{15}=")  # API Gateway's own ids, e.g. LV7fzho-PHcEJPw=


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gateway")
    shutil.copy(APP, directory / "app.py")
    # A start can take more than serve's usual 30 s on a machine loaded far past its cores.
    with serve(str(directory), timeout=120) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, timeout=10) as c:
        yield c


def test_http_api_event(client):
    response = client.get(
        "/v2/a/b%20c?x=1&x=2&y=z%21",
        headers=[("X-Multi", "1"), ("X-Multi", "2"), ("Cookie", "s=1; t=2")],
    )
    assert response.status_code == 200
    event = response.json()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /v2/{proxy+}"
    assert event["rawPath"] == "/v2/a/b%20c"
    assert event["rawQueryString"] == "x=1&x=2&y=z%21"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "z!"}
    assert event["pathParameters"] == {"proxy": "a/b c"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["x-multi"] == "1,2"
    assert "cookie" not in event["headers"]
    http = event["requestContext"]["http"]
    assert http["method"] == "GET" and http["sourceIp"] == "127.0.0.1"
    assert http["protocol"] == "HTTP/1.1"
    assert event["requestContext"]["stage"] == "$default"
    assert "body" not in event and event["isBase64Encoded"] is False
    assert response.headers["apigw-requestid"] == event["requestContext"]["requestId"]
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["headers"]["x-forwarded-proto"] == "http"


@pytest.mark.parametrize(
    ("path", "header"), [("/ids", "apigw-requestid"), ("/ids-v1", "x-amzn-requestid")]
)
def test_the_api_gateway_and_lambda_request_ids_differ_as_on_aws(client, path, header):
    seen = [client.get(path) for _ in range(3)]
    for response in seen:
        ids = response.json()
        # An HTTP API answers with `apigw-requestid`, a REST API with `x-amzn-RequestId`
        # and `x-amz-apigw-id` (its extended request id), never the other kind's.
        assert ids["apigw"] == response.headers[header]
        if header == "x-amzn-requestid":
            # A REST API's requestId is a UUID; its extended request id is another, short id.
            assert UUID.fullmatch(ids["apigw"])
            assert SHORT_ID.fullmatch(response.headers["x-amz-apigw-id"])
            assert ids["extended"] == response.headers["x-amz-apigw-id"] != ids["apigw"]
            assert "apigw-requestid" not in response.headers
        else:
            # An HTTP API's one id has the short shape (`LV7fzho-PHcEJPw=`).
            assert SHORT_ID.fullmatch(ids["apigw"])
            assert "x-amzn-requestid" not in response.headers
        assert UUID.fullmatch(ids["lambda"])
        assert ids["apigw"] != ids["lambda"]  # two ids, as API Gateway and Lambda give them
    every = [i for r in seen for i in r.json().values()]
    assert len(set(every)) == len(every)


def test_rest_api_event(client):
    response = client.post(
        "/v1/x/y?a=1&a=2", headers=[("X-Multi", "1"), ("X-Multi", "2")], content=b"hello"
    )
    event = response.json()
    assert event["resource"] == "/v1/{proxy+}"
    assert event["path"] == "/v1/x/y"
    assert event["httpMethod"] == "POST"
    assert event["headers"]["X-Multi"] == "2"
    assert event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["pathParameters"] == {"proxy": "x/y"}
    assert event["body"] == "hello" and event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == "Prod"
    assert event["requestContext"]["resourcePath"] == "/v1/{proxy+}"
    assert event["stageVariables"] is None


def test_binary_request_body_arrives_base64(client):
    data = bytes(range(256))
    event = client.post("/v2/bin", content=data, headers={"content-type": "image/png"}).json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == data


def test_binary_response_body_is_decoded(client):
    response = client.get("/binary")
    assert response.content == bytes(range(256))
    assert response.headers["content-type"] == "image/png"


def test_exact_route_beats_parameter_route(client):
    assert client.get("/items/special").json() == {"special": True}
    assert client.get("/items/42").json() == {"id": "42"}


@pytest.mark.parametrize(
    ("kind", "body"), [("dict", {"hello": "world"}), ("list", [1, 2]), ("str", "hi")]
)
def test_http_api_result_without_status_code_is_a_json_200(client, kind, body):
    response = client.get(f"/plain/{kind}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body


def test_cookies_and_multi_value_headers(client):
    response = client.get("/cookies")
    assert response.status_code == 201
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]
    assert client.get("/multi").headers.get_list("x-many") == ["1", "2"]


def test_unknown_route_is_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert client.post("/items/1").status_code == 404  # the path exists, not the method


def test_large_body_reaches_the_function_and_comes_back_intact(client):
    text = "0123456789abcdef" * (5 * 1024 * 1024 // 16)  # 5 MiB: many reads each way
    event = client.post("/v2/large", content=text, headers={"content-type": "text/plain"}).json()
    assert event["body"] == text


def test_body_over_6mb_is_413(client):
    response = client.post("/v2/big", content=b"x" * (6 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert SHORT_ID.fullmatch(response.headers["apigw-requestid"])  # as every API Gateway page
    rest = client.post("/v1/big", content=b"x" * (6 * 1024 * 1024 + 1))
    assert rest.status_code == 413
    assert UUID.fullmatch(rest.headers["x-amzn-requestid"])
    assert SHORT_ID.fullmatch(rest.headers["x-amz-apigw-id"])
    assert client.post("/v2/ok", content=b"x" * 1024).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/fail/v1", 502, {"message": "Internal server error"}),
        ("/fail/v2", 500, {"message": "Internal Server Error"}),
        ("/malformed/v1", 502, {"message": "Internal server error"}),
        ("/malformed/v2", 500, {"message": "Internal Server Error"}),
        ("/slow/v1", 502, {"message": "Internal server error"}),
        ("/slow/v2", 500, {"message": "Internal Server Error"}),
    ],
)
def test_function_failures_become_api_gateway_errors(client, path, status, body):
    response = client.get(path)
    assert response.status_code == status
    assert response.json() == body
    assert "secret" not in response.text


def test_malformed_http_does_not_take_the_server_down(url, client):
    parts = urlsplit(url)
    for garbage in (
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"\x00\xff" * 100 + b"\r\n\r\n",
    ):
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(garbage)
            reply = sock.recv(4096)
            assert reply == b"" or reply.startswith(b"HTTP/1.1 400")
    assert client.get("/items/7").json() == {"id": "7"}


def test_no_content_response_has_no_body(client):
    response = client.delete("/nocontent")
    assert response.status_code == 204
    assert response.content == b"" and "content-length" not in response.headers
    assert client.get("/items/3").json() == {"id": "3"}  # the connection is still usable


@pytest.mark.parametrize("kind", ["value", "name"])
def test_a_header_that_cannot_be_sent_is_a_malformed_response(client, kind):
    response = client.get(f"/badheader/{kind}")
    assert response.status_code == 500
    assert "injected" not in response.headers


def test_past_reserved_concurrency_requests_get_429(url):
    import concurrent.futures

    with (
        socket.create_server(("127.0.0.1", 0)) as gate,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        gate.settimeout(60)
        busy = f"{url}/busy?gate={gate.getsockname()[1]}"
        first = pool.submit(httpx.get, busy, timeout=60)
        held, _ = gate.accept()  # the function's one instance is busy until `held` closes
        with held:
            throttled = [httpx.get(busy, timeout=60) for _ in range(2)]
        assert first.result().status_code == 200
    assert [r.status_code for r in throttled] == [429, 429]
    assert throttled[0].json() == {"message": "Too Many Requests"}
