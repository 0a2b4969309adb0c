"""Object uploads: S3 event notifications to the functions whose filters match.

S3 invokes Lambda asynchronously, one record per event. Under `skylift up`, `dispatch`
stores the event as an asynchronous invocation before the PutObject or DeleteObject
that caused it is answered, so an accepted object's event is never lost, and a
throttled or failing function is retried as Lambda retries.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import orjson

from skylift.events.s3 import matches, s3_event, s3_event_record
from skylift.spec import FunctionSpec
from skylift.storage.protocol import ObjectInfo, ObjectStore
from skylift.triggers import UploadTrigger

Dispatch = Callable[[str, bytes], Awaitable[object]]  # (function, event)


def targets(specs: list[FunctionSpec]) -> list[tuple[str, str, UploadTrigger]]:
    """(function, configuration id, trigger) for every upload trigger of `specs`."""
    return [
        (spec.name, f"{spec.name}-upload-{i + 1}", trigger)
        for spec in specs
        for i, trigger in enumerate(spec.uploads)
    ]


class UploadNotifier:
    """Called by the S3 API after every change; invokes the matching functions."""

    def __init__(
        self, specs: list[FunctionSpec], dispatch: Dispatch, store: ObjectStore, region: str
    ) -> None:
        self.targets = targets(specs)
        self.dispatch = dispatch
        self.store = store
        self.region = region
        self.sent = 0

    @property
    def buckets(self) -> set[str]:
        return {trigger.bucket for _, _, trigger in self.targets}

    async def __call__(
        self, event_name: str, bucket: str, obj: ObjectInfo | str, request_id: str
    ) -> None:
        key = obj if isinstance(obj, str) else obj.key
        sequencer = None
        for function, configuration, trigger in self.targets:
            if trigger.bucket != bucket:
                continue
            if not matches(event_name, trigger.events, key, trigger.prefix, trigger.suffix):
                continue
            if isinstance(obj, str) and sequencer is None:
                sequencer = self.store.sequencer(bucket)
            record = s3_event_record(
                event_name,
                bucket,
                obj,
                region=self.region,
                request_id=request_id,
                host_id=secrets.token_urlsafe(48),
                source_ip="127.0.0.1",
                configuration_id=configuration,
                sequencer=sequencer,
            )
            self.sent += 1
            await self.dispatch(function, orjson.dumps(s3_event([record])))
