"""SQS's message move tasks (dead-letter queue redrive): StartMessageMoveTask,
ListMessageMoveTasks and CancelMessageMoveTask.

A task without ``MaxNumberOfMessagesPerSecond`` moves everything before it answers, and is
listed as COMPLETED. With a rate it runs in the background, moving that many messages a
second, and can be listed RUNNING and cancelled, as on SQS. Tasks are kept in memory, the
last 10 per source queue, as long as the server runs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass

from skylift.api.sqs_params import Params
from skylift.queues.errors import (
    InvalidParameterValue,
    QueueDoesNotExist,
    QueueError,
    ResourceNotFoundException,
)
from skylift.queues.protocol import QueueBackend

Result = dict[str, object]
_KEPT = 10  # tasks listed per source, as ListMessageMoveTasks' MaxResults allows at most
_MAX_RATE = 500


@dataclass
class MoveTask:
    task_id: str
    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    started_ms: int
    to_move: int
    moved: int = 0
    status: str = "RUNNING"
    failure: str | None = None
    runner: asyncio.Task[None] | None = None

    def entry(self) -> Result:
        """The task as ListMessageMoveTasks lists it."""
        entry: Result = {
            "TaskHandle": self.handle if self.status == "RUNNING" else None,
            "Status": self.status,
            "SourceArn": self.source_arn,
            "DestinationArn": self.destination_arn,
            "MaxNumberOfMessagesPerSecond": self.rate,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "FailureReason": self.failure,
            "StartedTimestamp": self.started_ms,
        }
        return {k: v for k, v in entry.items() if v is not None}


class MoveTasks:
    """The move tasks of one SqsApi."""

    def __init__(self, queues: QueueBackend) -> None:
        self.queues = queues
        self._tasks: dict[str, list[MoveTask]] = {}  # by source queue name, newest last

    async def start(self, params: Params, host: str) -> Result:
        source_arn = params.string("SourceArn")
        source = await self._queue_of(source_arn, "SourceArn")
        destination_arn = params.optional_string("DestinationArn")
        destination = (
            await self._queue_of(destination_arn, "DestinationArn") if destination_arn else None
        )
        rate = params.optional_int("MaxNumberOfMessagesPerSecond")
        if rate is not None and not 1 <= rate <= _MAX_RATE:
            raise InvalidParameterValue(
                f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: "
                f"Must be between 1 and {_MAX_RATE}."
            )
        if any(task.status == "RUNNING" for task in self._tasks.get(source, [])):
            raise InvalidParameterValue(
                "There is already a task running. Only one active task is allowed for a source "
                "queue arn at a given time."
            )
        # Moving none checks what a move would (source is a dead-letter queue, same types).
        await self.queues.redrive(source, destination, limit=0)
        task_id = str(uuid.uuid4())
        handle = base64.b64encode(
            json.dumps({"taskId": task_id, "sourceArn": source_arn}).encode()
        ).decode()
        stats = await self.queues.stats(source)
        task = MoveTask(
            task_id,
            handle,
            source_arn,
            destination_arn,
            rate,
            int(time.time() * 1000),
            stats.visible,
        )
        kept = self._tasks.setdefault(source, [])
        kept.append(task)
        del kept[:-_KEPT]
        if rate is None:
            try:
                task.moved = await self.queues.redrive(source, destination)
            except QueueError as error:
                task.status, task.failure = "FAILED", error.aws_query_code
                raise
            task.status = "COMPLETED"
        else:
            task.runner = asyncio.ensure_future(self._run(task, source, destination, rate))
        return {"TaskHandle": handle}

    async def list(self, params: Params, host: str) -> Result:
        source = await self._queue_of(params.string("SourceArn"), "SourceArn")
        limit = params.optional_int("MaxResults")
        if limit is not None and not 1 <= limit <= _KEPT:
            raise InvalidParameterValue(
                f"Value {limit} for parameter MaxResults is invalid. Reason: You must enter a "
                f"number that's between 1 and {_KEPT}."
            )
        newest = list(reversed(self._tasks.get(source, [])))[: limit or 1]
        return {"Results": [task.entry() for task in newest]} if newest else {}

    async def cancel(self, params: Params, host: str) -> Result:
        handle = params.string("TaskHandle")
        try:
            decoded = json.loads(base64.b64decode(handle, validate=True))
            task_id, source_arn = decoded["taskId"], decoded["sourceArn"]
            if not isinstance(task_id, str) or not isinstance(source_arn, str):
                raise TypeError(decoded)
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise InvalidParameterValue("Value for parameter TaskHandle is invalid.") from None
        source = await self._queue_of(source_arn, "SourceArn")
        for task in self._tasks.get(source, []):
            if task.task_id == task_id and task.status == "RUNNING":
                if task.runner is not None:
                    task.runner.cancel()
                task.status = "CANCELLED"
                return {"ApproximateNumberOfMessagesMoved": task.moved}
        raise ResourceNotFoundException(
            "Task does not exist.", hint="only a RUNNING task can be cancelled"
        )

    async def _run(self, task: MoveTask, source: str, destination: str | None, rate: int) -> None:
        try:
            while True:
                moved = await self.queues.redrive(source, destination, limit=rate)
                task.moved += moved
                if moved < rate:
                    task.status = "COMPLETED"
                    return
                await asyncio.sleep(1.0)
        except QueueError as error:
            task.status, task.failure = "FAILED", error.aws_query_code

    async def _queue_of(self, arn: str, parameter: str) -> str:
        parts = arn.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
            raise InvalidParameterValue(
                f"Value {arn} for parameter {parameter} is invalid.",
                hint="use a queue ARN, arn:aws:sqs:{region}:{account}:{name} (the queue's "
                "QueueArn attribute)",
            )
        try:
            return (await self.queues.get_queue(parts[5])).name
        except QueueDoesNotExist:
            raise ResourceNotFoundException(
                f"The resource that you specified for the {parameter} parameter doesn't exist.",
                hint=f"there is no queue named {parts[5]!r}",
            ) from None
