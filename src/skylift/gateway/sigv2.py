"""S3's presigned URLs of signature version 2 (`?AWSAccessKeyId=...&Signature=...&Expires=`),
what boto3's `generate_presigned_url` makes for S3 unless told `signature_version="s3v4"`.

The expected signature is botocore's own (`HmacV1QueryAuth`: HMAC-SHA1 over the method,
Content-MD5, Content-Type, the expiry time, the `x-amz-*` values and the resource).
Only path-style URLs (`http://server/BUCKET/KEY`), as boto3 makes them for an endpoint URL.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from botocore.auth import HmacV1QueryAuth
from botocore.awsrequest import HTTPHeaders
from botocore.credentials import Credentials

from skylift.asgi_types import Scope

AUTH_PARAMETERS = frozenset({"AWSAccessKeyId", "Signature", "Expires"})


class _Expected(HmacV1QueryAuth):  # type: ignore[misc]  # botocore has no type hints
    def __init__(self, credentials: Credentials, expires: str) -> None:
        super().__init__(credentials)
        self._expires_at = expires

    def _get_date(self) -> str:  # the URL's own expiry time stands where Date would
        return self._expires_at


def check(
    keys: Mapping[str, str], scope: Scope, query: list[tuple[str, str]], now: float
) -> tuple[str | None, str | None]:
    """(the key id, None) when the URL is signed right, else (key id or None, kind of
    refusal: malformed, unknown_key, expired, mismatch)."""
    found = {k: v for k, v in query if k in AUTH_PARAMETERS}
    key_id, signature, expires = (found.get(k) for k in ("AWSAccessKeyId", "Signature", "Expires"))
    if not key_id or not signature or not expires or not expires.isdigit():
        return key_id, "malformed"
    secret = keys.get(key_id)
    if secret is None:
        return key_id, "unknown_key"
    if int(expires) < now:
        return key_id, "expired"
    headers = HTTPHeaders()
    for name, value in query:
        lowered = name.lower()
        if lowered.startswith("x-amz-") or lowered in ("content-md5", "content-type"):
            headers[lowered] = value
    raw_query: str = scope.get("query_string", b"").decode("latin-1")
    kept = "&".join(
        part for part in raw_query.split("&") if part.partition("=")[0] not in AUTH_PARAMETERS
    )
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    split = urlsplit("http://skylift" + raw_path.decode("latin-1") + ("?" + kept if kept else ""))
    expected = _Expected(Credentials(key_id, secret), expires).get_signature(
        scope["method"], split, headers
    )
    if not hmac.compare_digest(expected, signature):
        return key_id, "mismatch"
    return key_id, None
