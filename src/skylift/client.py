"""A small client for a running skylift server's AWS-compatible APIs (SQS JSON protocol,
S3 REST), for the CLI. Standard library only, so `skylift send` starts instantly.

Requests are not signed (skylift does not check signatures); S3 requests carry
`x-amz-content-sha256`, which is how the gateway tells them from the app's own routes.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, cast

from skylift.errors import SkyliftError

DEFAULT_URL = "http://127.0.0.1:8080"


class ClientError(SkyliftError):
    """Raised when the server refuses a request or cannot be reached."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class Client:
    url: str = DEFAULT_URL
    timeout: float = 30.0
    # The server's token (`skylift up` beyond loopback), sent as a bearer token; by
    # default SKYLIFT_TOKEN, read here at the edge.
    token: str | None = field(default_factory=lambda: os.environ.get("SKYLIFT_TOKEN") or None)

    def sqs(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call an SQS action, e.g. `sqs("SendMessage", {"QueueUrl": ..., ...})`."""
        request = urllib.request.Request(
            self.url.rstrip("/") + "/",
            data=json.dumps(params).encode(),
            method="POST",
            headers={
                "X-Amz-Target": f"AmazonSQS.{action}",
                "Content-Type": "application/x-amz-json-1.0",
            },
        )
        status, body, _ = self._send(request)
        data: dict[str, Any] = json.loads(body or b"{}")
        if status >= 400:
            code = str(data.get("__type", "Error")).rsplit("#", 1)[-1]
            raise ClientError(f"{code}: {data.get('message', '')}", code=code, status=status)
        return data

    def invoke(self, function: str, payload: bytes) -> tuple[bytes, str | None, str]:
        """Invoke synchronously: (result, X-Amz-Function-Error or None, the log tail)."""
        request = urllib.request.Request(
            f"{self.url.rstrip('/')}/2015-03-31/functions/"
            f"{urllib.parse.quote(function, safe='')}/invocations",
            data=payload,
            method="POST",
            headers={"X-Amz-Invocation-Type": "RequestResponse", "X-Amz-Log-Type": "Tail"},
        )
        status, body, headers = self._send(request)
        if status >= 400:
            raise _invoke_error(status, body, headers)
        log = base64.b64decode(headers.get("X-Amz-Log-Result", "")).decode("utf-8", "replace")
        return body, headers.get("X-Amz-Function-Error"), log

    def invoke_async(self, function: str, payload: bytes) -> str:
        """InvocationType Event: the server stores it; returns its request id."""
        request = urllib.request.Request(
            f"{self.url.rstrip('/')}/2015-03-31/functions/"
            f"{urllib.parse.quote(function, safe='')}/invocations",
            data=payload,
            method="POST",
            headers={"X-Amz-Invocation-Type": "Event"},
        )
        status, body, headers = self._send(request)
        if status != 202:
            raise _invoke_error(status, body, headers)
        return str(headers.get("x-amzn-RequestId", ""))

    def status(self) -> dict[str, Any]:
        """The server's status (skylift's control API)."""
        return self._control("GET", "status")

    def scale(self, function: str, minimum: int | None, maximum: int | None) -> dict[str, Any]:
        """Change a function's minimum instances and reserved concurrency; its status."""
        limits = {k: v for k, v in (("min", minimum), ("max", maximum)) if v is not None}
        path = f"functions/{urllib.parse.quote(function, safe='')}/scaling"
        return self._control("PUT", path, json.dumps(limits).encode())

    def describe(self, function: str) -> dict[str, Any]:
        """A function's configuration, status and recent events (`skylift describe`)."""
        return self._control("GET", f"functions/{urllib.parse.quote(function, safe='')}")

    def invocation(self, request_id: str) -> dict[str, Any]:
        """What the server kept of a past invocation: its event and result."""
        return self._control("GET", f"invocations/{urllib.parse.quote(request_id, safe='')}")

    def logs(self, **query: str | int | None) -> dict[str, Any]:
        """A page of stored log events, as FilterLogEvents answers (`skylift logs --url`):
        `function`, `since`, `filter`, `request_id`, `limit`, `next_token` as the logs API
        takes them. POSTed: a token may be too long for a URL."""
        asked = {k: v for k, v in query.items() if v is not None}
        return self._control("POST", "logs", json.dumps(asked).encode())

    def _control(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url.rstrip('/')}/_skylift/{path}",
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        status, answer, _ = self._send(request)
        try:
            data = json.loads(answer)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            if status >= 500:  # a failing (or restarting) server, or a proxy before it
                text = answer.decode("utf-8", "replace").strip()[:200]
                raise ClientError(
                    f"the server at {self.url} failed: HTTP {status} to its control API"
                    + (f" ({text})" if text else ""),
                    status=status,
                ) from None
            raise ClientError(
                f"{self.url} is not a skylift server (HTTP {status} to its control API)",
                status=status,
            ) from None
        if status != 200:
            raise ClientError(str(data.get("message", f"HTTP {status}")), status=status)
        return cast(dict[str, Any], data)

    def queue_url(self, name: str) -> str:
        return str(self.sqs("GetQueueUrl", {"QueueName": name})["QueueUrl"])

    def put_object(self, bucket: str, key: str, data: bytes, content_type: str | None) -> str:
        headers = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(
            self._object_url(bucket, key), data=data, method="PUT", headers=headers
        )
        status, body, response_headers = self._send(request)
        if status >= 400:
            raise self._s3_error(status, body)
        return response_headers.get("ETag", "")

    def get_object(self, bucket: str, key: str) -> bytes:
        request = urllib.request.Request(
            self._object_url(bucket, key),
            method="GET",
            headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
        )
        status, body, _ = self._send(request)
        if status >= 400:
            raise self._s3_error(status, body)
        return body

    def _object_url(self, bucket: str, key: str) -> str:
        return f"{self.url.rstrip('/')}/{bucket}/{urllib.parse.quote(key, safe='/~')}"

    def _send(self, request: urllib.request.Request) -> tuple[int, bytes, Message]:
        if self.token and not request.has_header("Authorization"):
            request.add_header("Authorization", f"Bearer {self.token}")
        # Headers stay an email.message.Message: its lookups ignore case, as HTTP's do.
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(
                f"cannot reach a skylift server at {self.url} ({reason}): start one with "
                "`skylift up`, or point --url at it"
            ) from None

    @staticmethod
    def _s3_error(status: int, body: bytes) -> ClientError:
        text = body.decode("utf-8", "replace")
        code = _between(text, "<Code>", "</Code>") or f"HTTP {status}"
        message = _between(text, "<Message>", "</Message>") or text[:200]
        return ClientError(f"{code}: {message}", code=code, status=status)


def _between(text: str, start: str, end: str) -> str | None:
    i = text.find(start)
    j = text.find(end, i + len(start))
    return text[i + len(start) : j] if i >= 0 and j >= 0 else None


def _invoke_error(status: int, body: bytes, headers: Any) -> ClientError:
    """The Lambda API's error as AWS words it: its type and message (either casing)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    code = (headers.get("x-amzn-ErrorType") or f"HTTP {status}").split(":")[0]
    message = data.get("message") or data.get("Message") or body.decode("utf-8", "replace")
    return ClientError(f"{code}: {message}", code=code, status=status)
