"""HTTP API JWT authorizers through `skylift up` (tests/sam_apps/jwt): the signature,
issuer, audience, expiry and route scopes checked, the claims handed to the function."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from skylift.testing import ServerLog, serve

APP = Path(__file__).parent / "sam_apps" / "jwt"
KEY = (APP / "signing-key.pem").read_text()
ISSUER = "https://issuer.example.com/"


def token(**changes: Any) -> str:
    claims = {"iss": ISSUER, "aud": "my-app", "sub": "alice", "exp": int(time.time()) + 600}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "test-key"})


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("jwt") / "app"
    shutil.copytree(APP, root)
    with serve(str(root), log=ServerLog(), timeout=90) as base:
        yield base


def get(url: str, path: str, bearer: str | None) -> httpx.Response:
    headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
    return httpx.get(url + path, headers=headers, timeout=30)


def test_a_valid_token_reaches_the_function_with_its_claims(url: str) -> None:
    response = get(url, "/me", token(scope="read write"))
    assert response.status_code == 200, response.text
    authorizer = response.json()["jwt"]
    assert authorizer["claims"]["sub"] == "alice"
    assert authorizer["claims"]["iss"] == ISSUER
    assert authorizer["scopes"] == ["read", "write"]


# Tokens are made when the test runs: made at collection, they could expire before it.
BAD_TOKENS: dict[str, Callable[[], str | None]] = {
    "Bearer": lambda: None,
    "the token does not have a valid audience": lambda: token(aud="other-app"),
    "the token does not have a valid issuer": lambda: token(iss="https://elsewhere.example.com/"),
    "the token has expired": lambda: token(exp=int(time.time()) - 10),
    "the token signature is invalid": lambda: token()[:-6] + "AAAAAA",
    "the token is malformed": lambda: "not-a-jwt",
}


@pytest.mark.parametrize("challenge", BAD_TOKENS)
def test_a_bad_token_gets_401_with_www_authenticate(url: str, challenge: str) -> None:
    response = get(url, "/me", BAD_TOKENS[challenge]())
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert challenge in response.headers["www-authenticate"]


def test_a_route_scope_the_token_lacks_is_forbidden(url: str) -> None:
    refused = get(url, "/admin", token(scope="read"))
    assert (refused.status_code, refused.json()) == (403, {"message": "Forbidden"})
    assert get(url, "/admin", token(scope="read admin")).status_code == 200


def test_a_loopback_issuer_is_found_by_openid_discovery(tmp_path: Path) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    jwks = (APP / "jwks.json").read_bytes()

    class Provider(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            documents = {
                "/.well-known/openid-configuration": json.dumps(
                    {"issuer": base + "/", "jwks_uri": base + "/keys"}
                ).encode(),
                "/keys": jwks,
            }
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    provider = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    issuer = f"http://127.0.0.1:{provider.server_address[1]}/"
    root = tmp_path / "app"
    shutil.copytree(APP, root)
    template = (root / "template.yaml").read_text()
    template = template.replace("https://issuer.example.com/", "!Ref Issuer")
    template = template.replace("        jwks: {Tokens: ./jwks.json}\n", "        {}\n")
    template = template.replace("Resources:", "Parameters:\n  Issuer: {Type: String}\nResources:")
    (root / "template.yaml").write_text(template)
    try:
        options = ["--parameter-overrides", f"Issuer={issuer}"]
        with serve(str(root), log=ServerLog(), timeout=90, options=options) as base:
            response = get(base, "/me", token(iss=issuer))
            assert response.status_code == 200, response.text
            assert get(base, "/me", token()).status_code == 401  # another issuer
    finally:
        provider.shutdown()
        provider.server_close()
