"""Sample events in AWS's exact shapes, like `sam local generate-event`.

Every sample is made by the builder the platform itself uses for that trigger (the API
Gateway adapters, the SQS, S3 and EventBridge record builders), so a sample cannot drift
from what a function receives under `skylift up`. Only the identifiers and times are
invented: fresh ids, the current time, the local account and region.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson

from skylift.account import ACCOUNT_ID
from skylift.events.apigw_v1 import RestApiV1
from skylift.events.apigw_v2 import HttpApiV2
from skylift.events.eventbridge import scheduled_event
from skylift.events.http import HttpRequest, RequestIds, RouteMatch
from skylift.events.lambda_url import domain_name, url_event
from skylift.events.s3 import s3_event, s3_event_record
from skylift.events.sqs import sqs_event
from skylift.queues.protocol import ReceivedMessage
from skylift.sources.http import Router
from skylift.spec import FunctionSpec, HttpRoute

LOCAL_HOST = "127.0.0.1:8080"


@dataclass(frozen=True)
class Options:
    """What a sample may be asked for; each kind reads the fields that apply to it."""

    region: str
    method: str = "GET"
    path: str = "/"
    resource: str | None = None  # the route template; the path itself when None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    bucket: str = "example-bucket"
    key: str = "test/key"
    size: int = 1024
    queue: str = "example-queue"
    rule: str = "example-schedule"


def _request(options: Options, host: str) -> HttpRequest:
    parts = urlsplit(options.path if options.path.startswith("/") else "/" + options.path)
    body = (options.body or "").encode()
    headers = [("Host", host), ("User-Agent", "skylift-sample")]
    if body and not any(name.lower() == "content-type" for name in options.headers):
        headers.append(("Content-Type", "application/json"))
    headers += list(options.headers.items())
    return HttpRequest(
        method=options.method.upper(),
        raw_path=quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~"),
        raw_query=parts.query,
        headers=headers,
        body=body,
        host=host,
    )


def _ids() -> RequestIds:
    return RequestIds(request_id=str(uuid.uuid4()), time_epoch_ms=int(time.time() * 1000))


def _match(request: HttpRequest, resource: str | None) -> RouteMatch:
    """The route match the gateway's router makes for `request` on route `resource`."""
    path = unquote(request.raw_path)
    route = HttpRoute(path=resource or path, methods=(request.method,))
    router = Router(
        [FunctionSpec(name="sample", handler="app.handler", code_dir=".", routes=(route,))]
    )
    found = router.match(request.method, path)
    if found is None:
        raise ValueError(f"--path {path!r} does not match --resource {resource!r}")
    return found[1]


def apigateway_rest(options: Options) -> dict[str, Any]:
    """A REST API (payload 1.0) proxy event for METHOD PATH on route --resource."""
    request = _request(options, LOCAL_HOST)
    return RestApiV1().event(request, _match(request, options.resource), _ids())


def apigateway_http(options: Options) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for METHOD PATH on route --resource."""
    request = _request(options, LOCAL_HOST)
    return HttpApiV2().event(request, _match(request, options.resource), _ids())


def lambda_url(options: Options) -> dict[str, Any]:
    """A function URL event: payload 2.0 on `{url-id}.lambda-url.{region}.on.aws`."""
    url_id = secrets.token_hex(16)
    request = _request(options, domain_name(url_id, options.region))
    return url_event(request, url_id, options.region, _ids())


def _message(body: str) -> ReceivedMessage:
    now = str(int(time.time() * 1000))
    return ReceivedMessage(
        message_id=str(uuid.uuid4()),
        receipt_handle=base64.b64encode(secrets.token_bytes(48)).decode(),
        body=body,
        md5_of_body=hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        attributes={
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now,
            "SenderId": ACCOUNT_ID,
            "ApproximateFirstReceiveTimestamp": now,
        },
        message_attributes={},
        md5_of_message_attributes=None,
    )


def sqs_batch(bodies: list[str], options: Options) -> dict[str, Any]:
    """An SQS event with one record per body, from queue --queue."""
    arn = f"arn:aws:sqs:{options.region}:{ACCOUNT_ID}:{options.queue}"
    return sqs_event([_message(body) for body in bodies], arn, options.region)


def sqs(options: Options) -> dict[str, Any]:
    """An SQS event with one message whose body is --body (default: "Hello from SQS!")."""
    return sqs_batch([options.body if options.body is not None else "Hello from SQS!"], options)


@dataclass(frozen=True)
class _SampleObject:
    key: str
    size: int
    etag: str
    sequencer: str


def _s3(event_name: str, options: Options) -> dict[str, Any]:
    sequencer = f"{time.time_ns():016X}"
    obj: _SampleObject | str = options.key
    if event_name.startswith("ObjectCreated"):
        etag = hashlib.md5(options.key.encode(), usedforsecurity=False).hexdigest()
        obj = _SampleObject(options.key, options.size, etag, sequencer)
    record = s3_event_record(
        event_name,
        options.bucket,
        obj,
        region=options.region,
        request_id=secrets.token_hex(8).upper(),
        host_id=base64.b64encode(secrets.token_bytes(48)).decode(),
        source_ip="127.0.0.1",
        configuration_id="sample",
        sequencer=sequencer,
    )
    return s3_event([record])


def s3_put(options: Options) -> dict[str, Any]:
    """An S3 ObjectCreated:Put notification for --bucket/--key."""
    return _s3("ObjectCreated:Put", options)


def s3_delete(options: Options) -> dict[str, Any]:
    """An S3 ObjectRemoved:Delete notification for --bucket/--key."""
    return _s3("ObjectRemoved:Delete", options)


def schedule(options: Options) -> dict[str, Any]:
    """The EventBridge "Scheduled Event" a schedule delivers, fired now."""
    arn = f"arn:aws:events:{options.region}:{ACCOUNT_ID}:rule/{options.rule}"
    return scheduled_event(arn, datetime.now(UTC).replace(microsecond=0), options.region)


Builder = Callable[[Options], dict[str, Any]]

# Service -> event kind -> builder; a kind of None is the service's only one.
SAMPLES: dict[str, dict[str | None, Builder]] = {
    "apigateway": {"rest": apigateway_rest, "http": apigateway_http},
    "lambda-url": {None: lambda_url},
    "sqs": {None: sqs},
    "s3": {"put": s3_put, "delete": s3_delete},
    "schedule": {None: schedule},
}


def build(service: str, kind: str | None, options: Options) -> dict[str, Any]:
    """The sample for SERVICE [KIND]; ValueError saying what exists for anything else."""
    kinds = SAMPLES.get(service)
    if kinds is None:
        raise ValueError(f"unknown event type {service!r}; use one of: {', '.join(SAMPLES)}")
    if None in kinds:
        if kind is not None:
            raise ValueError(f"{service} events have no kinds; drop {kind!r}")
        return kinds[None](options)
    names = ", ".join(k for k in kinds if k is not None)
    if kind is None:
        raise ValueError(f"{service} needs a kind: one of {names}")
    builder = kinds.get(kind)
    if builder is None:
        raise ValueError(f"unknown {service} event kind {kind!r}; use one of {names}")
    return builder(options)


def for_function(spec: FunctionSpec, region: str) -> dict[str, Any] | None:
    """The event `skylift invoke` sends a function given none: its trigger's sample.

    A queue function gets an SQS event from its queue, a schedule function what its
    schedule delivers (its `Input` when it has one), an upload function an S3 put into its
    bucket. None for a function with only HTTP routes or no triggers (then `{}` is sent).
    """
    if spec.queues:
        return sqs(Options(region=region, queue=spec.queues[0].queue))
    if spec.schedules:
        trigger = spec.schedules[0]
        if trigger.input is not None:
            loaded: dict[str, Any] = orjson.loads(trigger.input)
            return loaded
        return schedule(Options(region=region, rule=f"{spec.name}-schedule"))
    if spec.uploads:
        return s3_put(Options(region=region, bucket=spec.uploads[0].bucket))
    return None
