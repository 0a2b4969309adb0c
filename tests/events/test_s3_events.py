"""S3 event records against "Event message structure" (S3 user guide, eventVersion 2.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import orjson
import pytest

from skylift.errors import DeclarationError
from skylift.events.s3 import (
    check_event_types,
    check_filter_value,
    encode_key,
    matches,
    s3_event,
    s3_event_record,
)
from skylift.storage.protocol import ObjectInfo

# "Example message when an object is created using a PUT request", verbatim.
DOCUMENTED_PUT = {
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "awsRegion": "us-west-2",
    "eventTime": "1970-01-01T00:00:00.000Z",
    "eventName": "ObjectCreated:Put",
    "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
    "responseElements": {
        "x-amz-request-id": "C3D13FE58DE4C810",
        "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
    },
    "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "testConfigRule",
        "bucket": {
            "name": "mybucket",
            "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
            "arn": "arn:aws:s3:::mybucket",
        },
        "object": {
            "key": "HappyFace.jpg",
            "size": 1024,
            "eTag": "d41d8cd98f00b204e9800998ecf8427e",
            "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
            "sequencer": "0055AED6DCD90281E5",
        },
    },
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def stored(key: str = "HappyFace.jpg") -> ObjectInfo:
    return ObjectInfo(
        bucket="mybucket",
        key=key,
        size=1024,
        etag='"d41d8cd98f00b204e9800998ecf8427e"',
        content_type="image/jpeg",
        last_modified=EPOCH,
        metadata={},
        sequencer="0055AED6DCD90281E5",
    )


def record(event_name: str = "ObjectCreated:Put", obj: Any = None, **options: Any) -> Any:
    arguments: dict[str, Any] = {
        "region": "us-west-2",
        "request_id": "C3D13FE58DE4C810",
        "host_id": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        "source_ip": "127.0.0.1",
        "configuration_id": "testConfigRule",
        "principal_id": "AIDAJDPLRKLG7UEXAMPLE",
        "owner_id": "A3NL1KOZZKExample",
        "event_time": EPOCH,
    }
    arguments.update(options)
    return s3_event_record(event_name, "mybucket", obj or stored(), **arguments)


def test_put_record_is_the_documented_example() -> None:
    built = record(version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko")
    assert built == DOCUMENTED_PUT
    # Same field order too, for anyone diffing JSON by eye.
    assert orjson.dumps(built) == orjson.dumps(DOCUMENTED_PUT)


def test_unversioned_objects_have_no_version_id() -> None:
    assert list(record()["s3"]["object"]) == ["key", "size", "eTag", "sequencer"]


def test_delete_record_carries_only_key_and_sequencer() -> None:
    built = record("ObjectRemoved:Delete", "gone/old file.txt", sequencer="0055AED6DCD90281E6")
    assert built["eventName"] == "ObjectRemoved:Delete"
    assert built["s3"]["object"] == {"key": "gone/old+file.txt", "sequencer": "0055AED6DCD90281E6"}
    with pytest.raises(ValueError, match="sequencer"):
        record("ObjectRemoved:Delete", "k")


def test_event_name_accepts_the_s3_prefix_and_refuses_unknown_types() -> None:
    assert record("s3:ObjectCreated:Copy")["eventName"] == "ObjectCreated:Copy"
    with pytest.raises(ValueError, match="unknown S3 event type"):
        record("ObjectCreated:*")
    with pytest.raises(ValueError, match="unknown S3 event type"):
        record("ObjectCreated:Putt")
    with pytest.raises(ValueError, match="unknown S3 event type"):
        record("s3:TestEvent")


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC), "2024-02-29T23:59:59.999Z"),
        (datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), "2024-01-02T03:04:05.006Z"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05.000Z"),  # naive means UTC
        (datetime.fromisoformat("2024-01-02T05:04:05.120+02:00"), "2024-01-02T03:04:05.120Z"),
    ],
)
def test_event_time_is_utc_with_milliseconds(when: datetime, text: str) -> None:
    assert record(event_time=when)["eventTime"] == text


def test_event_time_defaults_to_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    built = datetime.fromisoformat(record(event_time=None)["eventTime"].replace("Z", "+00:00"))
    assert before <= built <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("red flower.jpg", "red+flower.jpg"),  # the user guide's example
        ("logs/year=2026/part.gz", "logs/year%3D2026/part.gz"),  # "/" kept, "=" escaped
        ("test/10:47:07.log", "test/10%3A47%3A07.log"),
        ("a+b", "a%2Bb"),  # so a literal "+" survives unquote_plus
        ("café/ü.txt", "caf%C3%A9/%C3%BC.txt"),
        ("my file (1).jpg", "my+file+%281%29.jpg"),
        ("~/x*y_z-w.v", "%7E/x*y_z-w.v"),
    ],
)
def test_keys_are_form_url_encoded_except_slashes(key: str, encoded: str) -> None:
    assert encode_key(key) == encoded
    assert record(obj=stored(key))["s3"]["object"]["key"] == encoded
    # What every S3-triggered handler does to get the key back.
    assert unquote_plus(encoded) == key


def test_s3_event_wraps_records() -> None:
    records = [record(), record("ObjectRemoved:Delete", "k", sequencer="01")]
    event = s3_event(records)
    assert event == {"Records": records}
    assert orjson.loads(orjson.dumps(event)) == event


@pytest.mark.parametrize(
    ("event_name", "patterns", "expected"),
    [
        ("ObjectCreated:Put", ["s3:ObjectCreated:*"], True),
        ("s3:ObjectCreated:Put", ["s3:ObjectCreated:*"], True),
        ("ObjectCreated:Put", ["s3:ObjectCreated:Put"], True),
        ("ObjectCreated:Copy", ["s3:ObjectCreated:Put"], False),
        ("ObjectRemoved:Delete", ["s3:ObjectCreated:*"], False),
        ("ObjectRemoved:Delete", ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], True),
        ("ObjectCreated:Put", [], False),
        ("LifecycleTransition", ["s3:LifecycleTransition"], True),
        ("LifecycleTransition", ["s3:*"], False),
    ],
)
def test_matches_event_types(event_name: str, patterns: list[str], expected: bool) -> None:
    assert matches(event_name, patterns, "any.jpg") is expected


@pytest.mark.parametrize(
    ("key", "prefix", "suffix", "expected"),
    [
        ("images/cat.jpg", "images/", ".jpg", True),
        ("images/cat.png", "images/", ".jpg", False),
        ("logs/cat.jpg", "images/", "", False),
        ("images/cat.jpg", "", "", True),
        ("images/cat.JPG", "", ".jpg", False),  # case-sensitive, as keys are
        # S3 compares filters with the URL-encoded key, so values are written encoded.
        ("my photos/a.jpg", "my+photos/", "", True),
        ("my photos/a.jpg", "my photos/", "", False),
        ("year=2026/a", "year%3D2026/", "", True),
    ],
)
def test_matches_key_filters(key: str, prefix: str, suffix: str, expected: bool) -> None:
    assert matches("ObjectCreated:Put", ["s3:ObjectCreated:*"], key, prefix, suffix) is expected


def test_unknown_event_types_fail_at_declaration() -> None:
    check_event_types(["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete", "s3:TestEvent"])
    with pytest.raises(DeclarationError, match="s3:ObjectCreated:Putt") as caught:
        check_event_types(["s3:ObjectCreated:Putt"], function="thumbs")
    assert caught.value.function == "thumbs"
    assert "s3:ObjectCreated:Put" in str(caught.value)  # the fix is in the message


def test_filter_values_s3_would_never_match_fail_at_declaration() -> None:
    for value in ("images/", ".jpg", "my+photos/", "year%3D2026/", "a_b-c.d*"):
        check_filter_value("prefix", value)
    with pytest.raises(DeclarationError, match="'my\\+photos/'"):
        check_filter_value("prefix", "my photos/")
    with pytest.raises(DeclarationError, match="'year%3D2026/'"):
        check_filter_value("prefix", "year=2026/")
