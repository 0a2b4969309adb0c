"""Which API a request is for: an AWS API (by the exact markers its SDKs send), skylift's
control API (by its prefix, on the decoded and normalised path), or the app's own routes.

Shared by the HTTP front (`front.py`) and the ASGI gateway (`asgi.py`), so both decide
alike. The markers are protocol fields, parsed, never substrings found anywhere:

- a SigV4 `Authorization` header whose credential scope names the service
  (`AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/s3/aws4_request, ...`);
- SQS's JSON protocol: `X-Amz-Target: AmazonSQS.*` with `Content-Type:
  application/x-amz-json-1.0`;
- a presigned URL: a query parameter `X-Amz-Credential=KEY/DATE/REGION/SERVICE/aws4_request`
  (with `X-Amz-Algorithm=AWS4-HMAC-SHA256`), or SigV2's `AWSAccessKeyId` with `Signature`
  and `Expires` (boto3's S3 presigned URLs);
- S3's `x-amz-content-sha256` header, or virtual-hosted S3: a Host that is
  `s3.localhost` or ends with `.s3.localhost`;
- a function URL by its Host (`{url-id}.lambda-url.localhost`), before anything else,
  or by its path under `/_skylift/url/`;
- Lambda's API and the control API by their paths, which no route may use.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from skylift.api.lambda_rest import LAMBDA_PREFIXES
from skylift.runtime.environ import UNSERVED_PATH
from skylift.spec import CONTROL_PREFIX

METRICS_PATH = CONTROL_PREFIX + "metrics"
URL_PATH = CONTROL_PREFIX + "url/"  # function URLs by path (gateway/function_url.py)
_SIGV4 = b"AWS4-HMAC-SHA256 "
_SERVICES = {"s3": "s3", "sqs": "sqs"}  # Lambda's API is told by its paths
_SQS_JSON = b"application/x-amz-json-1.0"
_LAMBDA_PATHS = (
    "/2015-03-31/functions/",
    "/2017-10-31/functions/",
    "/2019-09-30/functions/",
    "/2016-08-19/account-settings",
)


def normalised(path: str) -> str:
    """`path` with empty and `.` segments dropped and `..` applied (a trailing slash kept):
    `//_skylift/x`, `/./_skylift/x` and `/a/../_skylift/x` all become `/_skylift/x`."""
    if "//" not in path and "/." not in path:
        return path
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    trailing = "/" if path.endswith(("/", "/.", "/..")) and parts else ""
    return "/" + "/".join(parts) + trailing


def control_path(path: str) -> str | None:
    """The normalised path when `path` (decoded) is under `/_skylift/`, else None."""
    if "_skylift" not in path:  # cheap pre-check; the decision below is exact
        return None
    norm = normalised(path)
    return norm if norm.startswith(CONTROL_PREFIX) else None


def aws_service(path: str, headers: Iterable[tuple[bytes, bytes]], query: bytes) -> str:
    """The API ("sqs", "s3", "lambda", "url", "control", "metrics", "unserved", "metrics_root")
    a request is for, or "" for the app's routes. `path` is decoded and, when it is under
    the control prefix, normalised; header names are lower case.

    A function URL's own Host comes first: AWS hands every path on it to the function,
    Lambda's API paths and `/_skylift/` ones too (which then reach only that function,
    never the control API). Any other path under one of Lambda's API versions is
    Lambda's too, unless it is signed for S3 (a bucket may be named "2024-08-31").
    """
    for name, value in headers:
        if name == b"host":
            if url_host(value):
                return "url"  # a function URL's own host, {url-id}.lambda-url.localhost
            break
    if path.startswith(_LAMBDA_PATHS):
        return "lambda"
    if path.startswith(CONTROL_PREFIX):
        if path == METRICS_PATH:
            return "metrics"
        if path.startswith(URL_PATH):
            return "url"  # function URLs by path, for clients that cannot set a Host
        # Where instances' AWS calls for services skylift does not serve end (refused).
        return "unserved" if path.startswith(UNSERVED_PATH) else "control"
    target = content_type = None
    s3 = False
    for name, value in headers:
        if name == b"authorization":
            if value.startswith(_SIGV4):
                found = _scope_service(_credential(value))
                if found:
                    return found
        elif name == b"x-amz-target":
            target = value
        elif name == b"content-type":
            content_type = value
        elif name == b"x-amz-content-sha256":
            s3 = True  # S3's own header (every SigV4 S3 request, and unsigned SDK ones)
        elif name == b"host" and _s3_host(value):
            s3 = True  # virtual-hosted S3 (BUCKET.s3.localhost), even from a plain client
    if (
        target is not None
        and target.startswith(b"AmazonSQS.")
        and content_type is not None
        and content_type.split(b";", 1)[0].strip().lower() == _SQS_JSON
    ):
        return "sqs"
    if s3:
        return "s3"
    if query and (b"X-Amz-Credential" in query or b"AWSAccessKeyId" in query):
        found = _presigned(query)
        if found:
            return found
    if path.startswith(LAMBDA_PREFIXES):
        return "lambda"
    # Prometheus' default path: skylift's metrics, unless the app has a route there (the
    # server registers "metrics_root" only then), so a route can always have it.
    return "metrics_root" if path == "/metrics" else ""


def _credential(authorization: bytes) -> str:
    """The Credential of a SigV4 Authorization header's parameters, or ""."""
    for part in authorization[len(_SIGV4) :].split(b","):
        key, _, value = part.strip().partition(b"=")
        if key == b"Credential":
            return value.decode("latin-1")
    return ""


def _scope_service(credential: str) -> str:
    """The service of a credential `KEY/DATE/REGION/SERVICE/aws4_request`, or ""."""
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return ""
    return _SERVICES.get(parts[3], "")


def _presigned(query: bytes) -> str:
    params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    if params.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256" and "X-Amz-Credential" in params:
        return _scope_service(params["X-Amz-Credential"])
    if {"AWSAccessKeyId", "Signature", "Expires"} <= params.keys():
        return "s3"
    return ""


def _s3_host(value: bytes) -> bool:
    name = value.decode("latin-1").lower()
    if name.startswith("["):
        return False
    name = name.rsplit(":", 1)[0] if ":" in name else name
    return name == "s3.localhost" or name.endswith(".s3.localhost")


def url_host(value: bytes) -> bool:
    """A function URL's host: `{url-id}.lambda-url.{anything}` (a port may follow)."""
    labels = value.decode("latin-1").lower().split(".")
    return len(labels) >= 3 and labels[1] == "lambda-url"
