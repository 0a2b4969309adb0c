"""RestApiV1 against "Set up Lambda proxy integrations in API Gateway" (REST, format 1.0)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from skylift.events._common import encode_body
from skylift.events.apigw_v1 import RestApiV1
from skylift.events.http import HttpRequest, MalformedResponse, RequestIds, RouteMatch

V1 = RestApiV1()
IDS = RequestIds("req-1", 1519166937665)


def request(
    path: str = "/",
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    method: str = "GET",
) -> HttpRequest:
    return HttpRequest(method, path, query, headers or [], body)


def event(req: HttpRequest, match: RouteMatch | None = None, ids: RequestIds = IDS) -> Any:
    return V1.event(req, match or RouteMatch("/", "ANY /", {}), ids)


# The documented example: POST /testStage/hello/world?name=me to a /{proxy+} resource,
# trimmed to the headers sent here.
DOC_HEADERS = [
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
    ("cache-control", "no-cache"),
    ("Content-Type", "application/json"),
    ("headerName", "headerValue"),
    ("Host", "gy415nuibc.execute-api.us-east-1.amazonaws.com"),
    ("User-Agent", "PostmanRuntime/2.4.5"),
    ("X-Forwarded-For", "54.240.196.186, 54.182.214.83"),
]
DOC_EVENT: dict[str, Any] = {
    "resource": "/{proxy+}",
    "path": "/hello/world",
    "httpMethod": "POST",
    "headers": dict(DOC_HEADERS),
    "multiValueHeaders": {name: [value] for name, value in DOC_HEADERS},
    "queryStringParameters": {"name": "me", "multivalueName": "me"},
    "multiValueQueryStringParameters": {"name": ["me"], "multivalueName": ["you", "me"]},
    "pathParameters": {"proxy": "hello/world"},
    "requestContext": {
        "accountId": "12345678912",
        "stage": "testStage",
        "requestId": "deef4878-7910-11e6-8f14-25afc3e9ae33",
        "identity": {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "apiKey": None,
            "sourceIp": "192.168.196.186",
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": "PostmanRuntime/2.4.5",
            "user": None,
        },
        "resourcePath": "/{proxy+}",
        "httpMethod": "POST",
        "apiId": "gy415nuibc",
    },
    "body": '{\r\n\t"a": 1\r\n}',
    "isBase64Encoded": False,
}


def test_documented_rest_example_field_by_field() -> None:
    req = HttpRequest(
        "POST",
        "/hello/world",
        "name=me&multivalueName=you&multivalueName=me",
        DOC_HEADERS,
        b'{\r\n\t"a": 1\r\n}',
        source_ip="192.168.196.186",
        host="gy415nuibc.execute-api.us-east-1.amazonaws.com",
    )
    ids = RequestIds(
        "deef4878-7910-11e6-8f14-25afc3e9ae33",
        1519166937665,
        api_id="gy415nuibc",
        account_id="12345678912",
        stage="testStage",
    )
    got = V1.event(req, RouteMatch("/{proxy+}", "ANY /{proxy+}", {"proxy": "hello/world"}), ids)
    for key, expected in DOC_EVENT.items():
        if key != "requestContext":
            assert got[key] == expected, key
    context = got["requestContext"]
    for key, expected in DOC_EVENT["requestContext"].items():
        if key != "identity":
            assert context[key] == expected, key
    for key, expected in DOC_EVENT["requestContext"]["identity"].items():
        assert context["identity"][key] == expected, key
    # Stage variables are not supported, so null, as for a stage that defines none.
    assert got["stageVariables"] is None
    assert set(got) == set(DOC_EVENT) | {"stageVariables"}


def test_request_context_matches_documented_aws_iam_example() -> None:
    # "requestTime": "20/Feb/2018:22:48:57 +0000", "path": "/test/", "stage": "test", ...
    context = event(request(), ids=RequestIds("r", 1519166937665, stage="test"))["requestContext"]
    assert context["requestTime"] == "20/Feb/2018:22:48:57 +0000"
    assert context["requestTimeEpoch"] == 1519166937665
    assert context["path"] == "/test/"
    assert (context["stage"], context["resourcePath"], context["httpMethod"]) == (
        "test",
        "/",
        "GET",
    )
    assert context["protocol"] == "HTTP/1.1"


def test_defaults_empty_request_and_context() -> None:
    got = event(request("/items"), RouteMatch("/items", "GET /items", {}))
    assert got["headers"] is None and got["multiValueHeaders"] is None
    assert got["queryStringParameters"] is None
    assert got["multiValueQueryStringParameters"] is None
    assert got["pathParameters"] is None
    assert got["body"] is None and got["isBase64Encoded"] is False
    context = got["requestContext"]
    assert context["stage"] == "Prod" and context["path"] == "/Prod/items"
    assert context["domainName"] == "127.0.0.1:8080" and context["domainPrefix"] == "127"
    assert context["identity"]["userAgent"] is None
    # A stable id per resource, as API Gateway's are.
    same = event(request("/items", "x=1"), RouteMatch("/items", "GET /items", {}))
    assert len(context["resourceId"]) == 6
    assert context["resourceId"] == same["requestContext"]["resourceId"]
    assert context["resourceId"] != event(request())["requestContext"]["resourceId"]


def test_multi_value_headers_last_wins_case_kept() -> None:
    got = event(request(headers=[("X-A", "1"), ("x-a", "2"), ("X-A", "3"), ("Accept", "*/*")]))
    assert got["headers"] == {"X-A": "3", "x-a": "2", "Accept": "*/*"}
    assert got["multiValueHeaders"] == {"X-A": ["1", "3"], "x-a": ["2"], "Accept": ["*/*"]}


def test_query_decoding_and_repeats() -> None:
    got = event(request(query="a=1&a=2&b=x%20y+z&c&=v&&%E2%9C%93=%26"))
    assert got["multiValueQueryStringParameters"] == {
        "a": ["1", "2"],
        "b": ["x y z"],
        "c": [""],
        "": ["v"],
        "✓": ["&"],
    }
    assert got["queryStringParameters"] == {"a": "2", "b": "x y z", "c": "", "": "v", "✓": "&"}


def test_path_is_percent_decoded_and_greedy_params_pass_through() -> None:
    match = RouteMatch("/files/{proxy+}", "ANY /files/{proxy+}", {"proxy": "a b/c"})
    got = event(request("/files/a%20b/c"), match)
    assert got["path"] == "/files/a b/c"
    assert got["resource"] == "/files/{proxy+}"
    assert got["pathParameters"] == {"proxy": "a b/c"}
    assert got["requestContext"]["path"] == "/Prod/files/a b/c"


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        (None, True),
        ("text/html; charset=utf-8", True),
        ("application/json", True),
        ("application/vnd.api+json", True),
        ("application/xml", True),
        ("image/svg+xml", True),
        ("application/javascript", True),
        ("application/x-www-form-urlencoded", True),
        ("Application/JSON", True),
        ("image/png", False),
        ("application/octet-stream", False),
        ("multipart/form-data; boundary=x", False),
    ],
)
def test_binary_rule_by_content_type(content_type: str | None, text: bool) -> None:
    assert encode_body(b"hello", content_type) == (
        ("hello", False) if text else (base64.b64encode(b"hello").decode(), True)
    )


def test_binary_body_base64_in_event() -> None:
    raw = b"\x89PNG\x00\xff"
    got = event(request(headers=[("content-type", "text/plain")], body=raw, method="POST"))
    assert got["isBase64Encoded"] is True  # text type, but not UTF-8
    assert base64.b64decode(got["body"]) == raw
    got = event(request(headers=[("Content-Type", "image/png")], body=b"ok"))
    assert (got["body"], got["isBase64Encoded"]) == ("b2s=", True)


# ---- responses ----


def test_response_basic_with_default_content_type() -> None:
    res = V1.response({"statusCode": 201, "headers": {"X-Id": "7"}, "body": "hé"})
    assert res.status == 201
    assert res.headers == [("X-Id", "7"), ("Content-Type", "application/json")]
    assert res.body == "hé".encode()


def test_response_merges_headers_and_multi_value_headers() -> None:
    res = V1.response(
        {
            "statusCode": 200,
            "headers": {"A": "1", "B": 2, "content-type": "text/html"},
            "multiValueHeaders": {"A": ["1", "2"], "Set-Cookie": ["x=1", "y=2"]},
        }
    )
    # ("A", "1") is in both, so it appears once; everything else is sent.
    assert res.headers == [
        ("A", "1"),
        ("A", "2"),
        ("Set-Cookie", "x=1"),
        ("Set-Cookie", "y=2"),
        ("B", "2"),
        ("content-type", "text/html"),
    ]
    assert res.body == b""


def test_response_accepts_nulls_and_scalar_header_values() -> None:
    # aws-lambda-go sends nil maps and empty bodies as null.
    res = V1.response({"statusCode": 204, "headers": None, "multiValueHeaders": None, "body": None})
    assert (res.status, res.body) == (204, b"")
    res = V1.response({"statusCode": 200, "headers": {"N": 1.5, "T": True, "F": False}})
    assert res.headers[:3] == [("N", "1.5"), ("T", "true"), ("F", "false")]


def test_response_base64_body_is_decoded() -> None:
    raw = bytes(range(256))
    res = V1.response(
        {"statusCode": 200, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    )
    assert res.body == raw
    wrapped = base64.encodebytes(raw).decode()  # MIME line breaks
    res = V1.response({"statusCode": 200, "body": wrapped, "isBase64Encoded": True})
    assert res.body == raw
    res = V1.response({"statusCode": 200, "body": "aGk=", "base64Encoded": True})
    assert res.body == b"hi"
    res = V1.response({"statusCode": 200, "body": "aGk=", "isBase64Encoded": False})
    assert res.body == b"aGk="


@pytest.mark.parametrize(
    "result",
    [
        None,
        "hello",
        ["statusCode", 200],
        200,
        {},
        {"body": "no status"},
        {"statusCode": "200"},
        {"statusCode": 200.0},
        {"statusCode": True},
        {"statusCode": None},
        {"statusCode": 99},
        {"statusCode": 600},
        {"statusCode": 200, "body": {"a": 1}},
        {"statusCode": 200, "body": 5},
        {"statusCode": 200, "headers": [["A", "1"]]},
        {"statusCode": 200, "headers": {"A": ["1"]}},
        {"statusCode": 200, "headers": {"A": {"x": 1}}},
        {"statusCode": 200, "headers": {"A": None}},
        {"statusCode": 200, "multiValueHeaders": {"A": "1"}},
        {"statusCode": 200, "multiValueHeaders": {"A": [None]}},
        {"statusCode": 200, "multiValueHeaders": "A: 1"},
        {"statusCode": 200, "isBase64Encoded": "true"},
        {"statusCode": 200, "body": "!!not base64!!", "isBase64Encoded": True},
        {"statusCode": 200, "body": "é", "isBase64Encoded": True},
        {"statusCode": 200, "cookies": ["a=1"]},
        {"statusCode": 200, "body": "x", "message": "extra key"},
    ],
)
def test_malformed_responses(result: Any) -> None:
    with pytest.raises(MalformedResponse):
        V1.response(result)


def test_error_responses() -> None:
    err = V1.function_error()
    assert (err.status, err.body) == (502, b'{"message": "Internal server error"}')
    assert err.headers == [("Content-Type", "application/json")]
    assert (V1.not_found().status, V1.not_found().body) == (404, b'{"message":"Not Found"}')
    too_large = V1.too_large()
    assert (too_large.status, too_large.body) == (413, b'{"message":"Request Entity Too Large"}')
    assert V1.version == "1.0"
