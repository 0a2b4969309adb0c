"""API Gateway's checks before a function runs, as a client of `skylift up` sees them:
Lambda authorizers (REST TOKEN and REQUEST, HTTP API simple responses), API keys with a
usage plan's quota, and request validation (tests/sam_apps/api-auth)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from skylift.testing import ServerLog, serve

APP = Path(__file__).parent / "sam_apps" / "api-auth"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("api-auth") / "app"
    shutil.copytree(APP, root)
    log = ServerLog()
    with serve(str(root), log=log, timeout=90) as base:
        yield base


def get(url: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url + path, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_a_token_authorizer_admits_with_its_context_and_caches_its_policy(url: str) -> None:
    first = get(url, "/token", headers={"Authorization": "Bearer allow"})
    assert first.status_code == 200, first.text
    authorizer = first.json()["authorizer"]
    # REST APIs hand the context on as strings, beside principalId and the latency.
    assert authorizer["principalId"] == "user-allow"
    assert authorizer["user"] == "allow"
    assert authorizer["admin"] == "true"
    assert isinstance(authorizer["integrationLatency"], int)
    again = get(url, "/token", headers={"Authorization": "Bearer allow"})
    # Cached for the default 300 s: the authorizer did not run again.
    assert again.json()["authorizer"]["calls"] == authorizer["calls"]


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({}, 401, {"message": "Unauthorized"}),
        ({"Authorization": "Bearer unauthorized"}, 401, {"message": "Unauthorized"}),
        ({"Authorization": "Bearer Not-Valid"}, 401, {"message": "Unauthorized"}),
        (
            {"Authorization": "Bearer deny"},
            403,
            {"Message": "User is not authorized to access this resource with an explicit deny"},
        ),
        ({"Authorization": "Bearer broken"}, 500, {"message": None}),
    ],
)
def test_a_token_authorizer_refuses_as_api_gateway_does(
    url: str, headers: dict[str, str], status: int, body: object
) -> None:
    response = get(url, "/token", headers=headers)
    assert response.status_code == status
    assert response.json() == body


def test_a_request_authorizer_sees_the_request_and_needs_its_identity_source(url: str) -> None:
    allowed = get(url, "/request", params={"user": "alice"})
    assert allowed.status_code == 200, allowed.text
    authorizer = allowed.json()["authorizer"]
    assert authorizer["principalId"] == "alice"
    assert authorizer["path"] == "/request"
    assert get(url, "/request").status_code == 401
    denied = get(url, "/request", params={"user": "bob"})
    assert denied.status_code == 403
    assert "explicit deny" in denied.json()["Message"]


def test_a_route_with_authorizer_none_is_open(url: str) -> None:
    response = get(url, "/open")
    assert response.status_code == 200
    assert response.json()["authorizer"] is None


def test_an_http_api_simple_authorizer(url: str) -> None:
    assert get(url, "/http").json() == {"message": "Unauthorized"}
    wrong = get(url, "/http", headers={"Authorization": "guess"})
    assert (wrong.status_code, wrong.json()) == (403, {"message": "Forbidden"})
    right = get(url, "/http", headers={"Authorization": "secret"})
    assert right.status_code == 200, right.text
    assert right.json()["authorizer"] == {"lambda": {"who": "http-user", "route": "GET /http"}}


def test_an_api_key_is_required_and_its_plan_quota_counts(url: str) -> None:
    missing = get(url, "/keyed")
    assert (missing.status_code, missing.json()) == (403, {"message": "Forbidden"})
    assert get(url, "/keyed", headers={"x-api-key": "not-a-key"}).status_code == 403
    key = {"x-api-key": "local-test-key-0123456789"}
    for _ in range(3):  # the plan's quota: 3 a day
        admitted = get(url, "/keyed", headers=key)
        assert admitted.status_code == 200, admitted.text
        assert admitted.json()["apiKey"] == "local-test-key-0123456789"
        assert admitted.json()["apiKeyId"] == "Key"
    over = get(url, "/keyed", headers=key)
    assert (over.status_code, over.json()) == (429, {"message": "Limit Exceeded"})


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"name": "pen", "price": 2}', 200),
        (b'{"price": 2}', 400),
        (b'{"name": "pen", "price": -1}', 400),
        (b"not json", 400),
    ],
)
def test_a_request_model_validates_the_body(url: str, body: bytes, status: int) -> None:
    response = httpx.post(
        url + "/items", content=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == status
    if status == 400:
        assert response.content == b'{"message": "Invalid request body"}'


def test_an_http_api_authorizer_answering_with_a_policy(url: str) -> None:
    allowed = get(url, "/http-policy", headers={"X-Token": "ok"})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["authorizer"] == {"lambda": {"shape": "1.0 REQUEST ok"}}
    denied = get(url, "/http-policy", headers={"X-Token": "no"})
    assert (denied.status_code, denied.json()) == (403, {"message": "Forbidden"})
    assert get(url, "/http-policy").status_code == 401


def test_required_request_parameters_are_checked(url: str) -> None:
    missing = get(url, "/search")
    assert missing.status_code == 400
    assert missing.content == b'{"message": "Missing required request parameters: [q]"}'
    assert get(url, "/search", params={"q": "pens"}).status_code == 200
