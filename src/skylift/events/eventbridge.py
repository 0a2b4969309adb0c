"""EventBridge's "Scheduled Event": what a rule with a schedule expression sends a target.

Shaped as a captured one (aws-lambda-rust-runtime's EventBridge schedule fixture):
``source`` "aws.events", ``detail-type`` "Scheduled Event", the rule's ARN as the only
resource, an empty ``detail``, and ``time`` in whole UTC seconds with a ``Z``. A target
with fixed ``Input`` gets that JSON instead; this module builds only the default event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from skylift.account import ACCOUNT_ID

DEFAULT_ACCOUNT = ACCOUNT_ID


def scheduled_event(
    rule_arn: str,
    time: datetime,
    region: str,
    account: str = DEFAULT_ACCOUNT,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The event the rule `rule_arn` delivers for its fire time `time` (timezone-aware).

    >>> rule = "arn:aws:events:us-east-1:123456789012:rule/nightly"
    >>> event = scheduled_event(rule, datetime(2026, 11, 25, 12, 0, tzinfo=UTC), "us-east-1")
    >>> event["time"], event["resources"]
    ('2026-11-25T12:00:00Z', ['arn:aws:events:us-east-1:123456789012:rule/nightly'])

    `event_id` defaults to a fresh UUID, as each delivery has its own.
    """
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError(f"time must be timezone-aware, e.g. datetime.now(UTC); got {time!r}")
    return {
        "version": "0",
        "id": event_id if event_id is not None else str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }
