"""Object uploads: S3 event notifications to the functions whose filters match.

S3 invokes Lambda asynchronously, one record per event: so do we, without holding up
the PutObject or DeleteObject that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

import orjson

from skylift.engine.invoker import Invoker
from skylift.events.s3 import matches, s3_event, s3_event_record
from skylift.spec import FunctionSpec
from skylift.storage.protocol import ObjectInfo, ObjectStore
from skylift.triggers import UploadTrigger

logger = logging.getLogger("skylift.uploads")


class UploadNotifier:
    """Called by the S3 API after every change; invokes the matching functions."""

    def __init__(
        self, specs: list[FunctionSpec], invoker: Invoker, store: ObjectStore, region: str
    ) -> None:
        self.targets: list[tuple[str, str, UploadTrigger]] = [
            (spec.name, f"{spec.name}-upload-{i + 1}", trigger)
            for spec in specs
            for i, trigger in enumerate(spec.uploads)
        ]
        self.invoker = invoker
        self.store = store
        self.region = region
        self.sent = 0
        self._tasks: set[asyncio.Task[None]] = set()

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
            task = asyncio.ensure_future(self._invoke(function, orjson.dumps(s3_event([record]))))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _invoke(self, function: str, event: bytes) -> None:
        try:
            result = await self.invoker.invoke(function, event)
        except Exception as exc:
            logger.error("upload notification to %s failed: %s", function, exc)
            return
        if result.error is not None:
            logger.warning(
                "%s failed on an S3 event: %s",
                function,
                result.payload[:300].decode("utf-8", "replace"),
            )

    async def drain(self) -> None:
        """Wait for the notifications in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
