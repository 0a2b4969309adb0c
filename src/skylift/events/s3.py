"""S3 event notifications, as S3 delivers them to Lambda: records, and which ones to send.

Follows "Event message structure" (eventVersion 2.1) in the Amazon S3 user guide:

- ``eventName`` is the event type without its ``s3:`` prefix (``ObjectCreated:Put``);
- ``eventTime`` is ISO-8601 UTC with milliseconds (``1970-01-01T00:00:00.000Z``);
- ``s3.object.key`` is URL-encoded the way HTML forms are ("red flower.jpg" becomes
  "red+flower.jpg"; S3 names ``application/x-www-form-urlencoded``), except that "/" stays
  as it is, as real notifications show ("logs/year%3D2026/..."). Letters, digits and
  ``. - _ *`` are kept; everything else is ``%XX`` of its UTF-8 bytes;
- ``eTag`` is the ETag without quotes; ``versionId`` is present only for versioned
  buckets; delete events carry just ``key`` and ``sequencer`` (no ``size``/``eTag``).

Notification filters (``matches``) compare their prefix and suffix with that encoded key:
S3 asks for filter values with special characters to be written URL-encoded (a space as
"+"), see "Configuring event notifications using object key name filtering".
``check_filter_value`` refuses, at declaration time, a value S3 would never match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote_plus

from skylift.errors import DeclarationError

# The event types of "Supported event types for SQS, SNS, and Lambda" (S3 user guide);
# a notification may also name a category with ":*", e.g. "s3:ObjectCreated:*".
EVENT_TYPES = frozenset(
    {
        "s3:TestEvent",
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectRemoved:Delete",
        "s3:ObjectRemoved:DeleteMarkerCreated",
        "s3:ObjectRestore:Post",
        "s3:ObjectRestore:Completed",
        "s3:ObjectRestore:Delete",
        "s3:ReducedRedundancyLostObject",
        "s3:Replication:OperationFailedReplication",
        "s3:Replication:OperationMissedThreshold",
        "s3:Replication:OperationReplicatedAfterThreshold",
        "s3:Replication:OperationNotTracked",
        "s3:LifecycleExpiration:Delete",
        "s3:LifecycleExpiration:DeleteMarkerCreated",
        "s3:LifecycleTransition",
        "s3:IntelligentTiering",
        "s3:ObjectTagging:Put",
        "s3:ObjectTagging:Delete",
        "s3:ObjectAcl:Put",
    }
)
_WILDCARDS = frozenset(
    name.rsplit(":", 1)[0] + ":*" for name in EVENT_TYPES if name.count(":") == 2
)
# Stand-ins for the account identities a real S3 names; obviously local.
LOCAL_PRINCIPAL = "AWS:AIDASKYLIFTLOCALUSER"
LOCAL_OWNER = "SKYLIFTLOCALOWNER"
# What a filter value may hold once URL-encoded as S3 expects: kept characters, "+" for a
# space, "%XX" escapes.
_ENCODED = re.compile(r"(?:[A-Za-z0-9.\-_*/+]|%[0-9A-Fa-f]{2})*")


class S3Object(Protocol):
    """What a created-object record needs; ``skylift.storage.ObjectInfo`` is one."""

    @property
    def key(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def etag(self) -> str: ...
    @property
    def sequencer(self) -> str: ...


def encode_key(key: str) -> str:
    """An object key as it appears in an event: ``encode_key("a b/c=d")`` is "a+b/c%3Dd"."""
    # quote_plus also keeps "~", which form encoding (and so S3) escapes.
    return quote_plus(key, safe="/*").replace("~", "%7E")


def _full_name(event_name: str) -> str:
    return event_name if event_name.startswith("s3:") else f"s3:{event_name}"


def s3_event_record(
    event_name: str,
    bucket: str,
    obj: S3Object | str,
    *,
    region: str,
    request_id: str,
    host_id: str,
    source_ip: str,
    configuration_id: str,
    sequencer: str | None = None,
    version_id: str | None = None,
    principal_id: str = LOCAL_PRINCIPAL,
    owner_id: str = LOCAL_OWNER,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """One record of an S3 notification, as S3 sends it to Lambda.

    ``obj`` is the stored object for ``ObjectCreated`` events, or just the key for
    ``ObjectRemoved`` ones (then pass the delete's ``sequencer``). ``request_id`` and
    ``host_id`` are the ``x-amz-request-id``/``x-amz-id-2`` of the response to the request.

    Example: ``s3_event_record("ObjectCreated:Put", "photos", info, region="us-east-1",
    request_id="C3D13FE58DE4C810", host_id="FMyUVURIY8...", source_ip="127.0.0.1",
    configuration_id="thumbnails")``.
    """
    name = _full_name(event_name)
    # s3:TestEvent is a message of its own ({"Service": ..., "Event": ...}), not a record.
    if name not in EVENT_TYPES or name == "s3:TestEvent":
        raise ValueError(f"unknown S3 event type {event_name!r}; use one of {sorted(EVENT_TYPES)}")
    when = event_time or datetime.now(UTC)
    # A naive time is taken as UTC, not as local time (astimezone's reading).
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    detail: dict[str, Any]
    if isinstance(obj, str):
        if sequencer is None:
            raise ValueError("an event for a bare key needs its sequencer (store.sequencer())")
        detail = {"key": encode_key(obj)}
    else:
        detail = {"key": encode_key(obj.key), "size": obj.size, "eTag": obj.etag.strip('"')}
        sequencer = sequencer or obj.sequencer
    if version_id is not None:
        detail["versionId"] = version_id
    detail["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z",
        "eventName": name[3:],
        "userIdentity": {"principalId": principal_id},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": host_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": owner_id},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": detail,
        },
    }


def s3_event(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The event a function receives: ``{"Records": [...]}``."""
    return {"Records": list(records)}


def matches(
    event_name: str, patterns: Sequence[str], key: str, prefix: str = "", suffix: str = ""
) -> bool:
    """Whether a notification for ``patterns`` and the key filter fires for this event.

    ``event_name`` may carry the ``s3:`` prefix or not; a pattern is an event type or a
    category wildcard. Example: ``matches("ObjectCreated:Put", ["s3:ObjectCreated:*"],
    "uploads/a b.jpg", prefix="uploads/", suffix=".jpg")`` is True.
    """
    name = _full_name(event_name)
    # Only "s3:Category:Type" names have a "s3:Category:*" wildcard.
    category = name.rsplit(":", 1)[0] + ":*" if name.count(":") == 2 else name
    if not any(pattern in (name, category) for pattern in patterns):
        return False
    encoded = encode_key(key)
    return encoded.startswith(prefix) and encoded.endswith(suffix)


def check_event_types(patterns: Sequence[str], *, function: str | None = None) -> None:
    """Raise ``DeclarationError`` for an event type S3 does not know."""
    for pattern in patterns:
        if pattern not in EVENT_TYPES and pattern not in _WILDCARDS:
            raise DeclarationError(
                f"unknown S3 event type {pattern!r}; use one of "
                f"{', '.join(sorted(EVENT_TYPES | _WILDCARDS))}",
                function=function,
            )


def check_filter_value(rule: str, value: str, *, function: str | None = None) -> None:
    """Raise ``DeclarationError`` for a prefix/suffix S3 would never match.

    S3 matches filters against the URL-encoded key, so "my photos/" never matches; it must
    be written "my+photos/".
    """
    if not _ENCODED.fullmatch(value):
        raise DeclarationError(
            f"S3 key filter {rule} {value!r} has characters S3 only matches URL-encoded; "
            f"write it as {encode_key(value)!r}",
            function=function,
        )
