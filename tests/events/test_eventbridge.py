"""scheduled_event against a captured EventBridge "Scheduled Event"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from skylift.events.eventbridge import scheduled_event

RULE = "arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"


def test_matches_the_captured_shape() -> None:
    # A real delivery, as captured in aws-lambda-rust-runtime's fixture.
    captured = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2015-10-08T16:53:06Z",
        "region": "us-east-1",
        "resources": [RULE],
        "detail": {},
    }
    event = scheduled_event(
        RULE,
        datetime(2015, 10, 8, 16, 53, 6, 250_000, tzinfo=UTC),
        "us-east-1",
        event_id="53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    )
    assert event == captured
    assert list(event) == list(captured)  # same key order, so JSON dumps alike


def test_time_is_utc_and_each_event_has_its_own_id() -> None:
    local = datetime(2026, 11, 25, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    first = scheduled_event(RULE, local, "eu-west-1", account="111122223333")
    second = scheduled_event(RULE, local, "eu-west-1")
    assert first["time"] == "2026-11-25T12:00:00Z"
    assert (first["account"], first["region"]) == ("111122223333", "eu-west-1")
    assert uuid.UUID(first["id"]) != uuid.UUID(second["id"])


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduled_event(RULE, datetime(2026, 11, 25, 12, 0), "us-east-1")
