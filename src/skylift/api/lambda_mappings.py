"""Lambda's event source mapping operations (read only) for the app's queue triggers:
``GET /2015-03-31/event-source-mappings/`` ListEventSourceMappings (filtered by
``FunctionName`` and ``EventSourceArn``; ``Marker``, ``MaxItems``) and
``GET /2015-03-31/event-source-mappings/{UUID}`` GetEventSourceMapping.

Each queue trigger is one mapping. Its UUID is derived from the function and the queue,
so it is the same after a restart, as a deployed mapping's is. A mapping an alert's
`drain` action paused is `Disabled` until the action is undone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from skylift.account import ACCOUNT_ID
from skylift.api.lambda_rest import (
    FunctionRef,
    max_items,
    not_found,
    query,
    read_marker,
    respond,
    segments,
    serve_operation,
    unknown_operation,
    write_marker,
)
from skylift.asgi_types import Receive, Scope, Send
from skylift.spec import FunctionSpec
from skylift.triggers import QueueTrigger

PAGE = 100  # ListEventSourceMappings answers at most this many
# Fixed, so a mapping's UUID depends only on its function and queue.
NAMESPACE = uuid.UUID("5b0a2f1e-8d3c-4c1b-9f5e-6a7d8c9b0e1f")


class MappingsApi:
    """An ASGI app answering Lambda's event source mapping reads from the functions' specs.

    Example::

        api = MappingsApi(platform.specs, region=platform.region)
        # boto3.client("lambda", ...).list_event_source_mappings(FunctionName="resize")
    """

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        *,
        region: str,
        account_id: str = ACCOUNT_ID,
        paused: Callable[[str, str], bool] = lambda function, queue: False,
    ) -> None:
        self.specs = specs
        self.paused = paused  # (function, queue) -> paused on the running server
        self.region = region
        self.account_id = account_id
        self.started = time.time()  # when the server created the mappings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_operation(scope, receive, send, self._answer)

    async def _answer(self, scope: Scope, body: bytes | None, request_id: str, send: Send) -> None:
        parts = segments(scope)
        answer: dict[str, Any] | None = None
        if parts[1:3] == ["2015-03-31", "event-source-mappings"] and scope["method"] == "GET":
            if parts[3:] in ([], [""]):
                answer = self.list_mappings(query(scope))
            elif len(parts) == 4:
                answer = self.get_mapping(parts[3])
        if answer is None:
            raise unknown_operation(scope)
        await respond(send, 200, orjson.dumps(answer), request_id)

    def mappings(self) -> list[dict[str, Any]]:
        """Every mapping, in a stable order (function, then queue)."""
        return [
            self._mapping(spec, trigger)
            for name, spec in sorted(self.specs.items())
            for trigger in spec.queues
        ]

    def list_mappings(self, params: dict[str, str]) -> dict[str, Any]:
        found = self.mappings()
        function = params.get("FunctionName")
        if function:
            arn = self._function_arn(FunctionRef.parse(function))
            found = [m for m in found if m["FunctionArn"] == arn]
        source = params.get("EventSourceArn")
        if source:
            found = [m for m in found if m["EventSourceArn"] == source]
        limit = max_items(params.get("MaxItems"), PAGE)
        start = 0
        marker = params.get("Marker")
        if marker:
            after = read_marker(marker)
            start = next((i for i, m in enumerate(found) if m["UUID"] == after), len(found))
        answer: dict[str, Any] = {"EventSourceMappings": found[start : start + limit]}
        if start + limit < len(found):
            answer["NextMarker"] = write_marker(found[start + limit]["UUID"])
        return answer

    def get_mapping(self, mapping_id: str) -> dict[str, Any]:
        for mapping in self.mappings():
            if mapping["UUID"] == mapping_id:
                return mapping
        raise not_found("The resource you requested does not exist.")

    def _function_arn(self, ref: FunctionRef) -> str:
        arn = f"arn:aws:lambda:{ref.region or self.region}:{ref.account or self.account_id}"
        return arn + f":function:{ref.name}"

    def _mapping(self, spec: FunctionSpec, trigger: QueueTrigger) -> dict[str, Any]:
        mapping_id = str(uuid.uuid5(NAMESPACE, f"{spec.name}\0{trigger.queue}"))
        mapping: dict[str, Any] = {
            "UUID": mapping_id,
            "BatchSize": trigger.batch_size,
            "MaximumBatchingWindowInSeconds": int(trigger.max_batching_window),
            "EventSourceArn": f"arn:aws:sqs:{self.region}:{self.account_id}:{trigger.queue}",
            "FunctionArn": self._function_arn(FunctionRef(spec.name)),
            "LastModified": self.started,
            "State": (
                "Enabled"
                if trigger.enabled and not self.paused(spec.name, trigger.queue)
                else "Disabled"
            ),
            "StateTransitionReason": "USER_INITIATED",
            "FunctionResponseTypes": (
                ["ReportBatchItemFailures"] if trigger.report_batch_item_failures else []
            ),
            "EventSourceMappingArn": (
                f"arn:aws:lambda:{self.region}:{self.account_id}:event-source-mapping:{mapping_id}"
            ),
        }
        if trigger.max_concurrency is not None:
            mapping["ScalingConfig"] = {"MaximumConcurrency": trigger.max_concurrency}
        return mapping
