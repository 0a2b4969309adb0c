"""AWS Signature Version 4, verified: who signed an SQS, S3 or Lambda API request.

With `skylift up --credentials FILE`, every request to the AWS APIs must be signed with one
of the file's keys (or the key the server gives its own functions). The expected signature
is computed by botocore's own signer (`SigV4Auth`: canonical request, string to sign,
signing key) over the request as it arrived: the path as sent, the query string, the
headers the client says it signed, and the payload hash:

- S3 signs the `x-amz-content-sha256` header's value (a SHA-256, `UNSIGNED-PAYLOAD` or a
  `STREAMING-...` marker), and its API checks the body against a SHA-256 itself
  (`XAmzContentSHA256Mismatch`); presigned URLs sign `UNSIGNED-PAYLOAD`.
- SQS and Lambda sign the body's SHA-256: the body is read (at most `MAX_BODY`) and hashed
  here, then handed on unchanged.

A request more than 15 minutes from the server's clock, or a presigned URL past its
`X-Amz-Expires`, is refused as AWS refuses it. What is refused and why goes to the log.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from skylift.asgi_types import Message, Receive, Scope
from skylift.gateway import sigv2

SKEW = 15 * 60  # seconds a request's time may be from the server's, as AWS allows
MAX_EXPIRES = 7 * 24 * 3600  # the longest X-Amz-Expires AWS accepts
MAX_BODY = 8 * 1024 * 1024  # more than any SQS or Lambda request may carry
ALGORITHM = "AWS4-HMAC-SHA256"
_TIME = "%Y%m%dT%H%M%SZ"
_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,"
    r"\s*Signature=([0-9a-f]{64})\s*$"
)


@dataclass(frozen=True)
class Refusal:
    """Why a request's signature was not accepted.

    `kind`: missing (no signature at all), malformed, unknown_key, mismatch, skewed
    (request time too far from now), expired (a presigned URL past its expiry), or
    unsupported (an older signature version).
    """

    kind: str
    detail: str = ""


@dataclass(frozen=True)
class Signed:
    """What a request claims about its signature, before it is checked."""

    key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # X-Amz-Date
    presigned: bool
    expires: int | None = None


class _Expected(SigV4Auth):  # type: ignore[misc]  # botocore has no type hints
    """botocore's signer, fed the request as it arrived rather than as it would build it."""

    def __init__(
        self,
        secret: str,
        signed: Signed,
        headers: HTTPHeaders,
        query: list[tuple[str, str]],
        payload: str,
    ) -> None:
        super().__init__(Credentials(signed.key_id, secret), signed.service, signed.region)
        self._headers = headers
        self._query = query
        self._payload = payload
        self._s3 = signed.service == "s3"

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._headers

    def canonical_query_string(self, request: AWSRequest) -> str:
        return str(self._canonical_query_string_params(self._query))

    def payload(self, request: AWSRequest) -> str:
        return self._payload

    def _normalize_url_path(self, path: str) -> str:
        # S3 signs the path as sent; the other services its URI-encoded form again.
        return path if self._s3 else super()._normalize_url_path(path)


class Verifier:
    """Checks signatures against `keys` (access key id -> secret access key)."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = dict(keys)

    def check(
        self,
        service: str,
        scope: Scope,
        payload: str | None,
        now: float | None = None,
    ) -> tuple[str | None, Refusal | None]:
        """(the key id that signed, None) when the request is signed right, else
        (the key id it names or None, why not). `payload` is the body's SHA-256 (SQS,
        Lambda) or None (S3: its header or UNSIGNED-PAYLOAD stands for the body)."""
        headers = HTTPHeaders()
        for name, value in scope["headers"]:
            headers.add_header(name.decode("latin-1"), value.decode("latin-1"))
        query = _pairs(scope.get("query_string", b"").decode("latin-1"))
        moment = time.time() if now is None else now
        if service == "s3" and "authorization" not in headers and _first(query, "AWSAccessKeyId"):
            key_id, kind = sigv2.check(self.keys, scope, query, moment)
            return key_id, None if kind is None else Refusal(kind, f"signature version 2: {kind}")
        signed = _parse(headers, query)
        if isinstance(signed, Refusal):
            return None, signed
        secret = self.keys.get(signed.key_id)
        if secret is None:
            return signed.key_id, Refusal("unknown_key", f"unknown access key id {signed.key_id}")
        if signed.service != service:
            return signed.key_id, Refusal(
                "mismatch", f"Credential should be scoped to correct service: '{service}'."
            )
        late = _late(signed, moment)
        if late is not None:
            return signed.key_id, late
        if payload is None:  # S3
            if signed.presigned:
                payload = _first(query, "X-Amz-Content-Sha256") or "UNSIGNED-PAYLOAD"
            else:
                payload = headers.get("x-amz-content-sha256")
                if payload is None:
                    return signed.key_id, Refusal(
                        "malformed",
                        "Missing required header for this request: x-amz-content-sha256",
                    )
        to_sign = HTTPHeaders()
        for name in signed.signed_headers:
            values = headers.get_all(name)
            if not values:
                return signed.key_id, Refusal("malformed", f"signed header {name} is missing")
            for value in values:
                to_sign.add_header(name, value)
        if signed.presigned:
            query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        request = AWSRequest(
            method=scope["method"], url="http://skylift" + raw_path.decode("latin-1")
        )
        request.context["timestamp"] = signed.timestamp
        signer = _Expected(secret, signed, to_sign, query, payload)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, signed.signature):
            return signed.key_id, Refusal("mismatch", "signature does not match")
        return signed.key_id, None


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def read_whole(receive: Receive) -> bytes | None:
    """The request's body, or None when it is longer than any it may be."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands on `body` once, then waits on the real one (disconnects)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _pairs(query: str) -> list[tuple[str, str]]:
    """Query parameters decoded (`+` stays a plus, as SigV4 reads a query string)."""
    if not query:
        return []
    pairs = []
    for part in query.split("&"):
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def _first(pairs: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in pairs if k == name), None)


def _parse(headers: HTTPHeaders, query: list[tuple[str, str]]) -> Signed | Refusal:
    authorization = headers.get("authorization")
    algorithm = _first(query, "X-Amz-Algorithm")
    if authorization is None and algorithm is None:
        if _first(query, "AWSAccessKeyId") is not None or _first(query, "Signature"):
            return Refusal("unsupported", "signature version 2 is not accepted")
        return Refusal("missing", "no signature")
    if authorization is not None:
        if authorization.startswith("AWS "):
            return Refusal("unsupported", "signature version 2 is not accepted")
        found = _HEADER.match(authorization.strip())
        if found is None:
            return Refusal(
                "malformed", f"Authorization header is not SigV4: {authorization[:60]!r}"
            )
        credential, signed_headers, signature = found.groups()
        timestamp = headers.get("x-amz-date")
        if timestamp is None:
            return Refusal("malformed", "no X-Amz-Date header")
        return _signed(credential, signed_headers, signature, timestamp, None)
    if algorithm != ALGORITHM:
        return Refusal("malformed", f"X-Amz-Algorithm {algorithm!r} is not {ALGORITHM}")
    fields = [
        _first(query, name)
        for name in ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Date")
    ]
    expires = _first(query, "X-Amz-Expires")
    if any(field is None for field in fields) or expires is None or not expires.isdigit():
        return Refusal("malformed", "a presigned URL's X-Amz-* parameters are incomplete")
    credential, signed_headers, signature, timestamp = (str(f) for f in fields)
    return _signed(credential, signed_headers, signature, timestamp, int(expires))


def _signed(
    credential: str, signed_headers: str, signature: str, timestamp: str, expires: int | None
) -> Signed | Refusal:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return Refusal(
            "malformed", f"Credential {credential!r} is not KEY/DATE/REGION/SERVICE/aws4_request"
        )
    try:
        datetime.strptime(timestamp, _TIME)
    except ValueError:
        return Refusal("malformed", f"X-Amz-Date {timestamp!r} is not YYYYMMDDTHHMMSSZ")
    if expires is not None and not 1 <= expires <= MAX_EXPIRES:
        return Refusal("malformed", "X-Amz-Expires must be between 1 and 604800 seconds")
    names = tuple(signed_headers.lower().split(";"))
    if "host" not in names:
        return Refusal("malformed", "the Host header must be signed")
    return Signed(
        key_id=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=names,
        signature=signature.lower(),
        timestamp=timestamp,
        presigned=expires is not None,
        expires=expires,
    )


def _late(signed: Signed, now: float) -> Refusal | None:
    """A signature used too long after (or too far before) it was made."""
    made = datetime.strptime(signed.timestamp, _TIME).replace(tzinfo=UTC).timestamp()
    shown = datetime.fromtimestamp(now, UTC).strftime(_TIME)
    if made > now + SKEW:
        later = datetime.fromtimestamp(now + SKEW, UTC).strftime(_TIME)
        return Refusal(
            "skewed",
            f"Signature not yet current: {signed.timestamp} is still later than {later} "
            f"({shown} + 15 min.)",
        )
    if signed.expires is not None:
        if made + signed.expires < now:
            return Refusal("expired", "Request has expired")
        return None
    if made < now - SKEW:
        earlier = datetime.fromtimestamp(now - SKEW, UTC).strftime(_TIME)
        return Refusal(
            "skewed",
            f"Signature expired: {signed.timestamp} is now earlier than {earlier} "
            f"({shown} - 15 min.)",
        )
    return None
