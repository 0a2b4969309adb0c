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


class CountingJwks:
    """A JWKS on a loopback port that counts how often it is read; `keys` may change."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.keys, self.reads = keys, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.reads += 1
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[CountingJwks]:
    import json

    provider = CountingJwks(json.loads((APP / "jwks.json").read_text())["keys"])
    yield provider
    provider.close()


def _statuses(authorizers: Any, source: str, tokens: list[str]) -> list[int]:
    import asyncio

    from skylift.events.http import HttpRequest
    from skylift.route_access import JwtAuthorizer

    authorizer = JwtAuthorizer("Tokens", ISSUER, ("my-app",), source)

    async def run() -> list[int]:
        answers = [
            await authorizers.authorize(
                authorizer, HttpRequest("GET", "/", "", [("Authorization", f"Bearer {t}")], b"")
            )
            for t in tokens
        ]
        return [getattr(answer, "status", 200) for answer in answers]

    return asyncio.run(run())


def _kidless(**changes: Any) -> str:
    claims = {"iss": ISSUER, "aud": "my-app", "sub": "alice", "exp": int(time.time()) + 600}
    return jwt.encode({**claims, **changes}, KEY, algorithm="RS256")


def test_tokens_without_a_key_id_use_the_cached_keys(jwks: CountingJwks) -> None:
    from skylift.gateway.jwt_auth import JwtAuthorizers

    statuses = _statuses(JwtAuthorizers(), jwks.url, [_kidless() for _ in range(20)])
    assert statuses == [200] * 20
    assert jwks.reads == 1


def test_unknown_key_ids_do_not_make_every_request_a_fetch(jwks: CountingJwks) -> None:
    from skylift.gateway.jwt_auth import JwtAuthorizers

    forged = [
        jwt.encode({"iss": ISSUER}, KEY, algorithm="RS256", headers={"kid": f"made-up-{n}"})
        for n in range(20)
    ]
    statuses = _statuses(JwtAuthorizers(), jwks.url, forged)
    assert statuses == [401] * 20
    assert jwks.reads <= 2  # the first read, and at most one more for the unknown ids


def test_a_rotated_key_is_found_once_the_refresh_interval_passes(jwks: CountingJwks) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from skylift.gateway.jwt_auth import JwtAuthorizers

    now = [1000.0]
    authorizers = JwtAuthorizers(monotonic=lambda: now[0])
    assert _statuses(authorizers, jwks.url, [token()]) == [200]
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(new_key.public_key(), as_dict=True)
    jwks.keys = [*jwks.keys, {**public, "kid": "new", "alg": "RS256", "use": "sig"}]
    claims = {"iss": ISSUER, "aud": "my-app", "exp": int(time.time()) + 600}
    rotated = jwt.encode(claims, new_key, algorithm="RS256", headers={"kid": "new"})
    now[0] += 2  # too soon after the last read: the cached keys answer
    assert _statuses(authorizers, jwks.url, [rotated]) == [401]
    assert jwks.reads == 1
    now[0] += 10
    assert _statuses(authorizers, jwks.url, [rotated, rotated]) == [200, 200]
    assert jwks.reads == 2


def test_a_failing_jwks_is_not_read_again_for_every_unknown_key_id(jwks: CountingJwks) -> None:
    from skylift.gateway.jwt_auth import JwtAuthorizers

    now = [1000.0]
    authorizers = JwtAuthorizers(monotonic=lambda: now[0])
    assert _statuses(authorizers, jwks.url, [token()]) == [200]
    jwks.keys = [{"kty": "RSA"}]  # the provider breaks: its keys no longer parse
    forged = jwt.encode({"iss": ISSUER}, KEY, algorithm="RS256", headers={"kid": "made-up"})
    now[0] += 20
    assert _statuses(authorizers, jwks.url, [forged] * 5) == [500] + [401] * 4
    assert jwks.reads == 2
