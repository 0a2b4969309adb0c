"""The SQS actions: each turns one request's parameters into QueueBackend calls and returns
the JSON result, shaped as the SQS API reference (and botocore's model) has it.

Parameters are checked here only as far as the wire needs (types, presence, batch entry
ids); SQS's rules about values live in the queue layer, which raises the QueueError named
after SQS's error code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from skylift.api.sqs_move_tasks import MoveTasks
from skylift.api.sqs_params import Params, missing
from skylift.api.sqs_results import batch_result, present, received, sent
from skylift.queues.attributes import (
    FIFO_STORED_ATTRIBUTES,
    INTEGER_ATTRIBUTES,
    READ_ONLY_ATTRIBUTES,
    STORED_ATTRIBUTES,
    queue_name_from_arn,
)
from skylift.queues.errors import (
    BatchEntryIdsNotDistinct,
    InvalidAttributeName,
    InvalidBatchEntryId,
    InvalidParameterValue,
    QueueDeletedRecently,
    QueueDoesNotExist,
    QueueError,
)
from skylift.queues.messages import check_batch_size
from skylift.queues.protocol import (
    OutgoingMessage,
    QueueBackend,
)

Result = dict[str, Any]
Action = Callable[["Params", str], Awaitable[Result]]

# The queue attribute names GetQueueAttributes knows (QueueAttributeName in the SQS model).
QUEUE_ATTRIBUTES = frozenset(
    {
        *INTEGER_ATTRIBUTES,
        *READ_ONLY_ATTRIBUTES,
        *STORED_ATTRIBUTES,
        *FIFO_STORED_ATTRIBUTES,
        "RedrivePolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
    }
)
_BATCH_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_LIST_LIMIT = 1000  # what ListQueues returns at most, as in SQS
_RECREATE_AFTER = 60.0  # seconds a deleted queue's name stays taken, as in SQS


class SqsActions:
    """The actions of one SqsApi by SQS action name; ``host`` shapes the queue URLs."""

    def __init__(self, queues: QueueBackend, account_id: str) -> None:
        self.queues = queues
        self.account_id = account_id
        self.move_tasks = MoveTasks(queues)
        # When each queue was deleted through this API (monotonic seconds), for SQS's rule
        # that a name can be used again only 60 seconds later.
        self._deleted: dict[str, float] = {}
        self.actions: dict[str, Action] = {
            "CreateQueue": self.create_queue,
            "GetQueueUrl": self.get_queue_url,
            "ListQueues": self.list_queues,
            "DeleteQueue": self.delete_queue,
            "PurgeQueue": self.purge_queue,
            "GetQueueAttributes": self.get_queue_attributes,
            "SetQueueAttributes": self.set_queue_attributes,
            "SendMessage": self.send_message,
            "SendMessageBatch": self.send_message_batch,
            "ReceiveMessage": self.receive_message,
            "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch,
            "ChangeMessageVisibility": self.change_message_visibility,
            "ChangeMessageVisibilityBatch": self.change_message_visibility_batch,
            "ListDeadLetterSourceQueues": self.list_dead_letter_source_queues,
            "StartMessageMoveTask": self.move_tasks.start,
            "ListMessageMoveTasks": self.move_tasks.list,
            "CancelMessageMoveTask": self.move_tasks.cancel,
            "TagQueue": self.tag_queue,
            "UntagQueue": self.untag_queue,
            "ListQueueTags": self.list_queue_tags,
        }

    def url(self, host: str, name: str) -> str:
        return f"http://{host}/{self.account_id}/{name}"

    # -- queues ---------------------------------------------------------------------------

    async def create_queue(self, params: Params, host: str) -> Result:
        name = params.string("QueueName")
        attributes = params.string_map("Attributes")
        tags = params.string_map("tags")  # lower case in SQS's model
        deleted = self._deleted.get(name)
        if deleted is not None and time.monotonic() - deleted < _RECREATE_AFTER:
            wait = _RECREATE_AFTER - (time.monotonic() - deleted)
            raise QueueDeletedRecently(
                "You must wait 60 seconds after deleting a queue before you can create another "
                "with the same name.",
                hint=f"{name!r} can be created again in {wait:.0f} s",
            )
        info = await self.queues.create_queue(name, attributes, tags)
        return {"QueueUrl": self.url(host, info.name)}

    async def get_queue_url(self, params: Params, host: str) -> Result:
        info = await self.queues.get_queue(params.string("QueueName"))
        return {"QueueUrl": self.url(host, info.name)}

    async def list_queues(self, params: Params, host: str) -> Result:
        prefix = params.optional_string("QueueNamePrefix") or ""
        names, token = _page(await self.queues.list_queues(prefix), params)
        return present({"QueueUrls": [self.url(host, n) for n in names], "NextToken": token})

    async def delete_queue(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        await self.queues.delete_queue(name)
        now = time.monotonic()
        self._deleted = {n: t for n, t in self._deleted.items() if now - t < _RECREATE_AFTER}
        self._deleted[name] = now
        return {}

    async def tag_queue(self, params: Params, host: str) -> Result:
        await self.queues.tag_queue(params.queue_name(), params.string_map("Tags", required=True))
        return {}

    async def untag_queue(self, params: Params, host: str) -> Result:
        keys = params.strings("TagKeys")
        if not keys:
            raise missing("TagKeys")
        await self.queues.untag_queue(params.queue_name(), keys)
        return {}

    async def list_queue_tags(self, params: Params, host: str) -> Result:
        return present({"Tags": await self.queues.list_tags(params.queue_name())})

    async def purge_queue(self, params: Params, host: str) -> Result:
        await self.queues.purge(params.queue_name())
        return {}

    async def get_queue_attributes(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        wanted = set(params.strings("AttributeNames"))
        unknown = sorted(wanted - QUEUE_ATTRIBUTES - {"All"})
        if unknown:
            raise InvalidAttributeName(
                f"Unknown Attribute {unknown[0]}.",
                hint="ask for All or for some of " + ", ".join(sorted(QUEUE_ATTRIBUTES)),
            )
        attributes = await self.queues.get_attributes(name)
        if "All" not in wanted:
            attributes = {k: v for k, v in attributes.items() if k in wanted}
        return present({"Attributes": attributes})

    async def set_queue_attributes(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        await self.queues.set_attributes(name, params.string_map("Attributes", required=True))
        return {}

    async def list_dead_letter_source_queues(self, params: Params, host: str) -> Result:
        dlq = (await self.queues.get_queue(params.queue_name())).name
        sources = []
        for name in await self.queues.list_queues():
            try:
                policy = (await self.queues.get_queue(name)).attributes.get("RedrivePolicy")
            except QueueDoesNotExist:
                continue  # deleted since it was listed
            if policy and _dead_letter_queue(policy) == dlq:
                sources.append(name)
        names, token = _page(sources, params)
        # "queueUrls" is lower camel case in the SQS model, unlike ListQueues' "QueueUrls".
        return present({"queueUrls": [self.url(host, n) for n in names], "NextToken": token})

    # -- messages -------------------------------------------------------------------------

    async def send_message(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        [result] = await self.queues.send(name, [_outgoing(params)])
        return sent(result)

    async def send_message_batch(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        entries, ids = _batch(params)
        messages = [_outgoing(entry) for entry in entries]
        await self._check_fifo_ids(name, messages)
        failed: dict[int, QueueError] = {}
        pending = list(range(len(entries)))
        successful: list[Result] = []
        # The backend refuses a batch whole, naming the first bad entry; SQS fails that entry
        # alone, so drop it and send the rest again.
        while pending:
            try:
                results = await self.queues.send(name, [messages[i] for i in pending])
            except QueueError as error:
                if error.entry is None or not 0 <= error.entry < len(pending):
                    raise
                failed[pending.pop(error.entry)] = error
                continue
            successful = [{"Id": ids[i], **sent(r)} for i, r in zip(pending, results, strict=True)]
            break
        result = batch_result(successful, ids, failed)
        if not result["Failed"]:
            del result["Failed"]  # SQS leaves an empty Failed out of SendMessageBatch's answer
        return result

    async def _check_fifo_ids(self, name: str, messages: list[OutgoingMessage]) -> None:
        """SQS refuses a FIFO batch whole (not entry by entry) when an entry lacks its
        MessageGroupId, or its MessageDeduplicationId without content-based deduplication."""
        info = await self.queues.get_queue(name)
        if not info.fifo:
            return
        content_based = info.attributes.get("ContentBasedDeduplication") == "true"
        for index, message in enumerate(messages):
            if message.message_group_id is None:
                raise InvalidParameterValue(
                    "The request must contain the parameter MessageGroupId.",
                    hint=f"entry {index} has none; every entry of a FIFO batch needs one",
                )
            if message.message_deduplication_id is None and not content_based:
                raise InvalidParameterValue(
                    "The queue should either have ContentBasedDeduplication enabled or "
                    "MessageDeduplicationId provided explicitly",
                    hint=f"entry {index} has no MessageDeduplicationId",
                )

    async def receive_message(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        system = {*params.strings("AttributeNames"), *params.strings("MessageSystemAttributeNames")}
        user = params.strings("MessageAttributeNames")
        # ReceiveRequestAttemptId is not supported: a retried FIFO receive gets new messages.
        max_messages = params.optional_int("MaxNumberOfMessages")
        messages = await self.queues.receive(
            name,
            max_messages=1 if max_messages is None else max_messages,
            visibility_timeout=params.optional_int("VisibilityTimeout"),
            wait_seconds=params.optional_int("WaitTimeSeconds"),
        )
        return present({"Messages": [received(m, system, user) for m in messages]})

    async def delete_message(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        [error] = await self.queues.delete(name, [params.string("ReceiptHandle")])
        if error is not None:
            raise error
        return {}

    async def delete_message_batch(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        entries, ids = _batch(params)
        handles = [entry.string("ReceiptHandle") for entry in entries]
        errors = await self.queues.delete(name, handles)
        failed = {i: error for i, error in enumerate(errors) if error is not None}
        return batch_result(
            [{"Id": ids[i]} for i in range(len(ids)) if i not in failed], ids, failed
        )

    async def change_message_visibility(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        handle = params.string("ReceiptHandle")
        await self.queues.change_visibility(name, handle, params.integer("VisibilityTimeout"))
        return {}

    async def change_message_visibility_batch(self, params: Params, host: str) -> Result:
        name = params.queue_name()
        entries, ids = _batch(params)
        changes = [(e.string("ReceiptHandle"), e.integer("VisibilityTimeout")) for e in entries]
        await self.queues.get_queue(name)  # a missing queue fails the request, not each entry
        failed: dict[int, QueueError] = {}
        for index, (handle, timeout) in enumerate(changes):
            try:
                await self.queues.change_visibility(name, handle, timeout)
            except QueueDoesNotExist:
                raise
            except QueueError as error:
                failed[index] = error
        return batch_result(
            [{"Id": ids[i]} for i in range(len(ids)) if i not in failed], ids, failed
        )


def _outgoing(params: Params) -> OutgoingMessage:
    return OutgoingMessage(
        body=params.string("MessageBody"),
        delay_seconds=params.optional_int("DelaySeconds"),
        message_attributes=params.message_attributes(),
        message_group_id=params.optional_string("MessageGroupId"),
        message_deduplication_id=params.optional_string("MessageDeduplicationId"),
        # Only AWSTraceHeader exists; it reaches the functions the message triggers.
        system_attributes=params.message_attributes("MessageSystemAttributes"),
    )


def _batch(params: Params) -> tuple[list[Params], list[str]]:
    """A batch's entries and their Ids, refusing the batches SQS refuses whole."""
    entries = params.entries()
    check_batch_size(len(entries))
    ids: list[str] = []
    for entry in entries:
        entry_id = entry.data.get("Id")
        if not isinstance(entry_id, str) or _BATCH_ENTRY_ID.fullmatch(entry_id) is None:
            raise InvalidBatchEntryId(
                "A batch entry id can only contain alphanumeric characters, hyphens and "
                "underscores. It can be at most 80 letters long.",
                hint=f"{entry_id!r} is not",
            )
        if entry_id in ids:
            raise BatchEntryIdsNotDistinct(
                f"Id {entry_id} repeated.", hint="give each entry its own Id"
            )
        ids.append(entry_id)
    return entries, ids


def _page(names: list[str], params: Params) -> tuple[list[str], str | None]:
    """One page of sorted names, and the NextToken for the rest (only given MaxResults)."""
    limit = params.optional_int("MaxResults")
    if limit is not None and not 1 <= limit <= _LIST_LIMIT:
        raise InvalidParameterValue(
            f"Value {limit} for parameter MaxResults is invalid. Reason: MaxResults must be "
            f"an integer between 1 and {_LIST_LIMIT}."
        )
    token = params.optional_string("NextToken")
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidParameterValue(
                "Invalid NextToken value.", hint="pass the NextToken of the previous response"
            ) from None
        names = [n for n in names if n > after]
    page = names[: limit or _LIST_LIMIT]
    more = limit is not None and len(names) > limit
    return page, base64.urlsafe_b64encode(page[-1].encode()).decode() if more else None


def _dead_letter_queue(policy: str) -> str | None:
    try:
        return queue_name_from_arn(json.loads(policy)["deadLetterTargetArn"])[2]
    except (ValueError, KeyError, TypeError, QueueError):
        return None
