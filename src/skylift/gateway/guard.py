"""Who may drive the server: the Host it is reached by, the origin of browser requests,
and, beyond loopback, a token for the control and Lambda APIs.

- **Host** (DNS rebinding): a request must name this server: the address it listens on,
  `localhost` and its subdomains (virtual-hosted S3, function URLs), the loopback
  addresses, any IP literal when it listens on all addresses, or an `--allow-host` name
  (and its subdomains). Otherwise 421, before anything runs.
- **Origin** (a web page driving a developer's server): the AWS APIs and the control API
  refuse a browser's cross-origin request (an `Origin` that is not the server's own, or
  `Sec-Fetch-Site: cross-site`) with 403, unless `--cors-origin` allows that origin. SDKs
  and the CLI send no `Origin`; the app's own routes keep their own CORS behaviour.
- **Token**: when the server listens beyond loopback, the control API and the Lambda API
  need it, as `Authorization: Bearer TOKEN` or as the access key id of a SigV4 request.
- **Signatures** (`--credentials FILE`): every SQS, S3 and Lambda request must be signed
  with one of the file's keys (verified in `signatures.py`); a bearer token still opens them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from skylift.asgi_types import Scope, Send
from skylift.gateway.sigv4 import Verifier

logger = logging.getLogger("skylift.guard")

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# Control API paths a probe or a scraper reads without the token (they reveal nothing).
# The dashboard's page and assets too: they hold no data, and a browser loads them before
# its script can send the token (observe/dashboard.py).
OPEN_PATHS = frozenset({"/_skylift/health", "/_skylift/"})
OPEN_PREFIX = "/_skylift/static/"
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
# Served like the app's own routes (only the Host check): function URLs, whose AuthType
# and Cors decide who may call them.
PUBLIC = frozenset({"url"})
_CREDENTIAL = re.compile(rb"Credential=([^/,\s]+)/")


def loopback(host: str) -> bool:
    """Whether listening on `host` keeps the server to this machine."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Guard:
    names: frozenset[str]  # host names (and their subdomains) that mean this server
    any_ip: bool  # listening on every address: any IP literal reaches it legitimately
    origins: frozenset[str]  # cross-origin callers allowed by --cors-origin ("*": any)
    token: str | None  # required by the control and Lambda APIs, when set
    # --credentials: the keys (id -> secret) whose SigV4 signatures open the AWS APIs
    keys: Mapping[str, str] | None = None

    @classmethod
    def build(
        cls,
        listen: str,
        allow_hosts: Iterable[str] = (),
        cors_origins: Iterable[str] = (),
        token: str | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> Guard:
        names = {*LOOPBACK, *(h.lower().rstrip(".") for h in allow_hosts)}
        if listen not in WILDCARDS:
            names.add(listen.lower())
        return cls(
            frozenset(names),
            listen in WILDCARDS,
            frozenset(o.rstrip("/") for o in cors_origins),
            token,
            keys,
        )

    def host_allowed(self, host: bytes | None) -> bool:
        if host is None:  # HTTP/1.0 without Host: no browser sends that
            return True
        name = _hostname(host.decode("latin-1")).lower().rstrip(".")
        if name in self.names or name.endswith(".localhost"):
            return True
        if any(name.endswith("." + allowed) for allowed in self.names):
            return True
        if self.any_ip:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False

    def cross_origin(
        self, origin: bytes | None, fetch_site: bytes | None, host: bytes | None
    ) -> bool:
        """Whether a browser sent this from another site's page (and no option allows it)."""
        if origin is None and fetch_site != b"cross-site":
            return False
        seen = origin.decode("latin-1").rstrip("/") if origin is not None else None
        if "*" in self.origins or (seen is not None and seen in self.origins):
            return False
        if seen is not None and host is not None:
            own = host.decode("latin-1")
            if seen in (f"http://{own}", f"https://{own}"):
                return fetch_site == b"cross-site"
        return True

    @property
    def functions_key(self) -> str | None:
        """The access key id the server's own functions get: it opens the Lambda API (so
        they can invoke each other) but not the control API, and is not the token."""
        if self.token is None:
            return None
        digest = hmac.digest(self.token.encode(), b"skylift functions", hashlib.sha256)
        return "ASIASKYLIFT" + digest.hex()[:16].upper()

    @property
    def functions_secret(self) -> str | None:
        """The secret that goes with `functions_key` when signatures are verified."""
        if self.token is None or self.keys is None:
            return None
        return hmac.digest(self.token.encode(), b"skylift functions secret", hashlib.sha256).hex()

    def verifier(self) -> Verifier | None:
        """What checks SigV4 signatures (--credentials): the file's keys, the functions'
        derived key, and the token as a key whose secret is itself."""
        if self.keys is None:
            return None
        keys = dict(self.keys)
        if self.token is not None and self.functions_key and self.functions_secret:
            keys[self.functions_key] = self.functions_secret
            keys[self.token] = self.token
        return Verifier(keys)

    def bearer(self, authorization: bytes | None) -> bool:
        """Whether the request carries the server's token as a bearer token."""
        if self.token is None or not authorization or authorization[:7].lower() != b"bearer ":
            return False
        return hmac.compare_digest(authorization[7:].strip(), self.token.encode())

    def authorized(self, authorization: bytes | None, service: str = "control") -> bool:
        if self.token is None:
            return True
        if not authorization:
            return False
        accepted = [self.token.encode()]
        if service == "lambda" and self.functions_key is not None:
            accepted.append(self.functions_key.encode())
        if authorization[:7].lower() == b"bearer ":
            given = authorization[7:].strip()
        else:
            found = _CREDENTIAL.search(authorization)
            if found is None:
                return False
            given = found.group(1)
        # Compare with every accepted key, always: the time taken says nothing.
        return sum(hmac.compare_digest(given, key) for key in accepted) > 0


def _hostname(host: str) -> str:
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _headers(scope: Scope) -> dict[bytes, bytes]:
    wanted = (b"host", b"origin", b"sec-fetch-site", b"authorization")
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in wanted:
            found[name] = value
    return found


async def refused(guard: Guard, scope: Scope, service: str | None, send: Send) -> bool:
    """Answer and return True when `guard` refuses this request; `service` is the AWS or
    control API it is for (None: the app's own routes, which only the Host check covers)."""
    headers = _headers(scope)
    host = headers.get(b"host")
    if not guard.host_allowed(host):
        _note(f"refused a request for Host {host!r}: not this server's; add it with --allow-host")
        await _answer(send, 421, b"application/json", b'{"message":"Misdirected Request"}')
        return True
    if service is None or service in PUBLIC:
        return False
    if guard.cross_origin(headers.get(b"origin"), headers.get(b"sec-fetch-site"), host):
        _note(
            f"refused a cross-origin browser request to the {service} API from "
            f"{headers.get(b'origin')!r}; allow an origin with --cors-origin"
        )
        await _denied(send, service, "Cross-origin requests are not allowed.")
        return True
    path: str = scope["path"]
    open_to_probes = path in OPEN_PATHS or path.startswith(OPEN_PREFIX)  # no token there
    signed = guard.keys is not None and service == "lambda"  # signatures checked next
    if (
        service in ("control", "lambda")
        and not signed
        and not open_to_probes
        and not guard.authorized(headers.get(b"authorization"), service)
    ):
        _note(f"refused a {service} API request without the server's token")
        await _denied(send, service, "The security token included in the request is invalid.")
        return True
    return False


_noted: set[str] = set()


def _note(message: str) -> None:
    if message not in _noted and len(_noted) < 1000:
        _noted.add(message)
        logger.warning("%s", message)


async def _denied(send: Send, service: str, message: str) -> None:
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>{message}</Message></Error>"
        ).encode()
        await _answer(send, 403, b"application/xml", body)
        return
    code = "UnrecognizedClientException" if service == "lambda" else "AccessDeniedException"
    body = orjson.dumps({"__type": code, "message": message, "Message": message})
    await _answer(send, 403, b"application/json", body, code.encode())


async def _answer(
    send: Send, status: int, content_type: bytes, body: bytes, error: bytes | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if error is not None:
        headers.append((b"x-amzn-errortype", error))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
