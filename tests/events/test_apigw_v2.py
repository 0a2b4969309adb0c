"""HttpApiV2 against "Working with AWS Lambda proxy integrations for HTTP APIs" (2.0)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from skylift.events.apigw_v2 import HttpApiV2
from skylift.events.http import HttpRequest, MalformedResponse, RequestIds, RouteMatch

V2 = HttpApiV2()
DEFAULT = RouteMatch("$default", "$default", {})


def event(
    path: str = "/",
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    match: RouteMatch = DEFAULT,
) -> Any:
    req = HttpRequest("GET", path, query, headers or [], body)
    return V2.event(req, match, RequestIds("LV7fzho-PHcEJPw=", 1587481701067))


def test_minimal_event_matches_documented_shape() -> None:
    # Shaped like a real no-authorizer capture (aws-lambda-rust-runtime's fixture).
    req = HttpRequest(
        "GET",
        "/",
        "",
        [("accept", "*/*"), ("user-agent", "curl/7.58.0")],
        b"",
        source_ip="1.2.3.4",
        host="aaaaaaaaaa.execute-api.us-west-2.amazonaws.com",
    )
    ids = RequestIds("LV7fzho-PHcEJPw=", 1587481701067, api_id="aaaaaaaaaa")
    assert V2.event(req, DEFAULT, ids) == {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"accept": "*/*", "user-agent": "curl/7.58.0"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "aaaaaaaaaa",
            "domainName": "aaaaaaaaaa.execute-api.us-west-2.amazonaws.com",
            "domainPrefix": "aaaaaaaaaa",
            "http": {
                "method": "GET",
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "1.2.3.4",
                "userAgent": "curl/7.58.0",
            },
            "requestId": "LV7fzho-PHcEJPw=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Apr/2020:15:08:21 +0000",
            "timeEpoch": 1587481701067,
        },
        "isBase64Encoded": False,
    }


def test_headers_lowercased_and_joined_cookies_split_out() -> None:
    got = event(
        headers=[
            ("Header1", "value1"),
            ("Header2", "value1"),
            ("header2", "value2"),
            ("Cookie", "a=1; b=2"),
            ("cookie", "c=3"),
        ]
    )
    assert got["headers"] == {"header1": "value1", "header2": "value1,value2"}
    assert got["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookies" not in event(headers=[("X", "1")])


def test_query_joined_and_decoded_raw_kept() -> None:
    raw = "parameter1=value1&parameter1=value2&parameter2=value&q=a%2Cb+c&flag"
    got = event(query=raw)
    assert got["rawQueryString"] == raw
    assert got["queryStringParameters"] == {
        "parameter1": "value1,value2",
        "parameter2": "value",
        "q": "a,b c",
        "flag": "",
    }
    assert "queryStringParameters" not in event()


def test_path_decoding_and_greedy_path_parameters() -> None:
    match = RouteMatch("/files/{proxy+}", "GET /files/{proxy+}", {"proxy": "a b/✓"})
    got = event("/files/a%20b/%E2%9C%93", match=match)
    assert got["rawPath"] == "/files/a%20b/%E2%9C%93"
    assert got["requestContext"]["http"]["path"] == "/files/a b/✓"
    assert got["routeKey"] == got["requestContext"]["routeKey"] == "GET /files/{proxy+}"
    assert got["pathParameters"] == {"proxy": "a b/✓"}
    assert "pathParameters" not in event()


def test_bodies_text_binary_and_empty() -> None:
    got = event(headers=[("Content-Type", "application/json")], body=b'{"a":"\xc3\xa9"}')
    assert (got["body"], got["isBase64Encoded"]) == ('{"a":"é"}', False)
    raw = b"\x00\x01\xfe\xff"
    got = event(headers=[("Content-Type", "application/octet-stream")], body=raw)
    assert got["isBase64Encoded"] is True and base64.b64decode(got["body"]) == raw
    got = event(body=b"\xff\xfe")  # no content type, but not UTF-8
    assert got["isBase64Encoded"] is True and base64.b64decode(got["body"]) == b"\xff\xfe"
    got = event()
    assert "body" not in got and got["isBase64Encoded"] is False
    assert "stageVariables" not in got


# ---- responses ----


@pytest.mark.parametrize(
    ("result", "body"),
    [
        ({"message": "Hello from Lambda!"}, b'{"message":"Hello from Lambda!"}'),
        ([1, "two", None], b'[1,"two",null]'),
        ("Hello from Lambda!", b'"Hello from Lambda!"'),
        (None, b"null"),
        (42, b"42"),
        (True, b"true"),
        ({"body": "x", "headers": {}}, b'{"body":"x","headers":{}}'),
        (2**70, b"1180591620717411303424"),
    ],
)
def test_result_without_status_code_is_the_json_body(result: Any, body: bytes) -> None:
    res = V2.response(result)
    assert (res.status, res.headers, res.body) == (
        200,
        [("Content-Type", "application/json")],
        body,
    )
    assert orjson.loads(res.body) == result


def test_structured_response_headers_cookies_body() -> None:
    res = V2.response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/html", "X-Multi": "a,b", "X-Num": 3},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": "<p>é</p>",
            "multiValueHeaders": {"Ignored": ["yes"]},  # not a 2.0 field: ignored
        }
    )
    assert res.status == 201
    assert res.headers == [
        ("Content-Type", "text/html"),
        ("X-Multi", "a,b"),
        ("X-Num", "3"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2"),
    ]
    assert res.body == "<p>é</p>".encode()


def test_structured_response_defaults() -> None:
    res = V2.response({"statusCode": 204})
    assert (res.status, res.body) == (204, b"")
    assert res.headers == [("Content-Type", "text/plain; charset=utf-8")]
    res = V2.response({"statusCode": 200, "headers": {"content-type": "image/png"}})
    assert res.headers == [("content-type", "image/png")]


def test_structured_response_base64_body_is_decoded() -> None:
    raw = b"\x89PNG\r\n\x1a\n\x00"
    res = V2.response(
        {"statusCode": 200, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    )
    assert res.body == raw


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": None},
        {"statusCode": "200"},
        {"statusCode": True},
        {"statusCode": 42},
        {"statusCode": 200, "headers": ["A: 1"]},
        {"statusCode": 200, "headers": {"A": ["1", "2"]}},
        {"statusCode": 200, "cookies": "a=1"},
        {"statusCode": 200, "cookies": [1]},
        {"statusCode": 200, "body": {"a": 1}},
        {"statusCode": 200, "isBase64Encoded": "yes"},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
    ],
)
def test_malformed_structured_responses(result: Any) -> None:
    with pytest.raises(MalformedResponse):
        V2.response(result)


def test_error_responses() -> None:
    err = V2.function_error()
    assert (err.status, err.body) == (500, b'{"message":"Internal Server Error"}')
    assert err.headers == [("Content-Type", "application/json")]
    assert (V2.not_found().status, V2.not_found().body) == (404, b'{"message":"Not Found"}')
    assert V2.too_large().status == 413
    assert V2.version == "2.0"


@pytest.mark.parametrize(
    "headers",
    [
        {"Bad Name": "1"},
        {"X:Y": "1"},
        {"": "1"},
        {"X-A\n": "1"},  # a regex's "$" would let the final line break through
        {"X-A": "1\r\nInjected: yes"},
        {"X-A": "1\nInjected: yes"},
        {"X-A": "1\x00"},
    ],
)
def test_a_header_http_cannot_carry_is_malformed_even_after_its_name_was_sent(
    headers: dict[str, str],
) -> None:
    # Names found valid are remembered: a later bad value under one must still fail.
    assert V2.response({"statusCode": 200, "headers": {"X-A": "1"}}).status == 200
    with pytest.raises(MalformedResponse):
        V2.response({"statusCode": 200, "headers": headers})
