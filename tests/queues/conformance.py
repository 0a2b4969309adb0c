"""The behaviour every QueueBackend must show, written against the protocol only.

A backend's test module subclasses ``QueueBackendConformance`` and provides the
``open_backend`` fixture (an async factory of fresh, empty backends); see test_sqlite.py.
Each test runs on its own event loop with its own backend. Timing-dependent tests use 1 s
visibility timeouts and delays to stay fast.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from skylift.queues import OutgoingMessage, QueueBackend
from skylift.queues.errors import (
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    PurgeQueueInProgress,
    QueueDoesNotExist,
    QueueError,
    QueueNameExists,
    ReceiptHandleIsInvalid,
    TooManyEntriesInBatchRequest,
)

Opener = Callable[[], Awaitable[QueueBackend]]
Scenario = Callable[[Any, QueueBackend], Awaitable[None]]
ACCOUNT_ARN = "arn:aws:sqs:us-east-1:123456789012:"


def scenario(test: Scenario) -> Callable[[Any, Opener], None]:
    """Run an ``async def test_x(self, q)`` on a fresh backend and event loop."""

    def run(self: Any, open_backend: Opener) -> None:
        async def main() -> None:
            backend = await open_backend()
            try:
                await test(self, backend)
            finally:
                await backend.close()

        asyncio.run(main())

    # Not functools.wraps: pytest would follow __wrapped__ and ask for a fixture named q.
    run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
    return run


def msg(body: str = "hello", **options: Any) -> OutgoingMessage:
    return OutgoingMessage(body, **options)


async def raises(error: type[QueueError], call: Awaitable[Any]) -> QueueError:
    with pytest.raises(error) as caught:
        await call
    return caught.value


async def drain(q: QueueBackend, name: str) -> list[str]:
    """Receive and delete everything visible; return the bodies in the order received."""
    bodies: list[str] = []
    while got := await q.receive(name, max_messages=10):
        bodies.extend(m.body for m in got)
        assert await q.delete(name, [m.receipt_handle for m in got]) == [None] * len(got)
    return bodies


class QueueBackendConformance:
    @pytest.fixture
    def open_backend(self) -> Opener:
        raise NotImplementedError("a backend's test module must provide open_backend")

    # -- queues -----------------------------------------------------------------------

    @scenario
    async def test_create_queue_reports_sqs_defaults(self, q: QueueBackend) -> None:
        info = await q.create_queue("jobs", {})
        assert (info.name, info.arn, info.fifo) == ("jobs", ACCOUNT_ARN + "jobs", False)
        attributes = await q.get_attributes("jobs")
        assert attributes["QueueArn"] == ACCOUNT_ARN + "jobs"
        assert {k: attributes[k] for k in info.attributes} == dict(info.attributes)
        expected = {
            "VisibilityTimeout": "30",
            "DelaySeconds": "0",
            "MessageRetentionPeriod": "345600",
            "MaximumMessageSize": "1048576",
            "ReceiveMessageWaitTimeSeconds": "0",
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
            "ApproximateNumberOfMessagesDelayed": "0",
        }
        assert {k: attributes[k] for k in expected} == expected
        assert abs(int(attributes["CreatedTimestamp"]) - time.time()) < 5
        assert "FifoQueue" not in attributes and "RedrivePolicy" not in attributes

    @scenario
    async def test_create_is_idempotent_only_for_matching_attributes(self, q: QueueBackend) -> None:
        first = await q.create_queue("jobs", {"VisibilityTimeout": "60"})
        assert await q.create_queue("jobs", {"VisibilityTimeout": "60"}) == first
        assert await q.create_queue("jobs", {}) == first
        error = await raises(QueueNameExists, q.create_queue("jobs", {"VisibilityTimeout": "61"}))
        assert "VisibilityTimeout" in error.message
        assert (error.code, error.aws_query_code) == ("QueueNameExists", "QueueAlreadyExists")
        assert (await q.get_attributes("jobs"))["VisibilityTimeout"] == "60"

    @scenario
    async def test_invalid_queue_names_are_refused(self, q: QueueBackend) -> None:
        for name, attributes in [
            ("", {}),
            ("has space", {}),
            ("dots.are.bad", {}),
            ("x" * 81, {}),
            ("plain.fifo", {}),
            ("notfifo", {"FifoQueue": "true"}),
            ("y" * 76 + ".fifo", {"FifoQueue": "true"}),
        ]:
            await raises(InvalidParameterValue, q.create_queue(name, attributes))
        assert await q.create_queue("x" * 80, {})
        assert await q.create_queue("a-Z_0" + "y" * 70 + ".fifo", {"FifoQueue": "true"})
        assert len(await q.list_queues()) == 2

    @scenario
    async def test_invalid_attributes_are_refused_and_create_nothing(self, q: QueueBackend) -> None:
        for attributes in [
            {"VisibilityTimeout": "43201"},
            {"VisibilityTimeout": "soon"},
            {"DelaySeconds": "-1"},
            {"DelaySeconds": "901"},
            {"MaximumMessageSize": "1023"},
            {"MaximumMessageSize": "1048577"},
            {"MessageRetentionPeriod": "59"},
            {"MessageRetentionPeriod": "1209601"},
            {"ReceiveMessageWaitTimeSeconds": "21"},
            {"FifoQueue": "maybe"},
        ]:
            error = await raises(InvalidAttributeValue, q.create_queue("jobs", attributes))
            assert next(iter(attributes)) in error.message
        for attributes in [
            {"Colour": "blue"},
            {"QueueArn": "arn:aws:sqs:us-east-1:123456789012:jobs"},
            {"ContentBasedDeduplication": "true"},
        ]:
            await raises(InvalidAttributeName, q.create_queue("jobs", attributes))
        assert await q.list_queues() == []

    @scenario
    async def test_set_attributes_changes_only_valid_values(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        await q.set_attributes("jobs", {"VisibilityTimeout": "5", "DelaySeconds": "3"})
        attributes = await q.get_attributes("jobs")
        assert (attributes["VisibilityTimeout"], attributes["DelaySeconds"]) == ("5", "3")
        await raises(
            InvalidAttributeValue,
            q.set_attributes("jobs", {"VisibilityTimeout": "7", "DelaySeconds": "1000"}),
        )
        await raises(InvalidAttributeName, q.set_attributes("jobs", {"FifoQueue": "true"}))
        assert (await q.get_attributes("jobs"))["VisibilityTimeout"] == "5"

    @scenario
    async def test_list_and_delete_queues(self, q: QueueBackend) -> None:
        for name in ["beta", "alpha", "alps", "gamma"]:
            await q.create_queue(name, {})
        assert await q.list_queues() == ["alpha", "alps", "beta", "gamma"]
        assert await q.list_queues("al") == ["alpha", "alps"]
        await q.delete_queue("alps")
        assert await q.list_queues("al") == ["alpha"]
        error = await raises(QueueDoesNotExist, q.get_queue("alps"))
        assert (error.status, error.type) == (400, "com.amazonaws.sqs#QueueDoesNotExist")
        assert error.aws_query_code == "AWS.SimpleQueueService.NonExistentQueue"
        await raises(QueueDoesNotExist, q.delete_queue("alps"))

    @scenario
    async def test_attributes_without_local_effect_are_kept(self, q: QueueBackend) -> None:
        # Templates written for SQS set these; they are stored and reported, as SQS does.
        kept = {"SqsManagedSseEnabled": "true", "Policy": '{"Version":"2012-10-17"}'}
        await q.create_queue("jobs", kept)
        attributes = await q.get_attributes("jobs")
        assert {k: attributes[k] for k in kept} == kept
        await raises(InvalidAttributeValue, q.set_attributes("jobs", {"SqsManagedSseEnabled": "1"}))
        await raises(
            InvalidAttributeName, q.set_attributes("jobs", {"DeduplicationScope": "queue"})
        )
        info = await q.create_queue("jobs.fifo", {"FifoQueue": "true"})
        assert info.attributes["DeduplicationScope"] == "queue"

    @scenario
    async def test_deleting_a_queue_ends_long_polls_on_it(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        poll = asyncio.create_task(q.receive("jobs", wait_seconds=10))
        await asyncio.sleep(0.1)
        await q.delete_queue("jobs")
        with pytest.raises(QueueDoesNotExist):
            await asyncio.wait_for(poll, 2)

    @scenario
    async def test_every_operation_on_a_missing_queue_raises(self, q: QueueBackend) -> None:
        for call in [
            q.get_attributes("nope"),
            q.set_attributes("nope", {"DelaySeconds": "1"}),
            q.send("nope", [msg()]),
            q.receive("nope"),
            q.delete("nope", ["handle"]),
            q.change_visibility("nope", "handle", 5),
            q.purge("nope"),
            q.stats("nope"),
            q.redrive("nope"),
        ]:
            await raises(QueueDoesNotExist, call)

    # -- sending and receiving --------------------------------------------------------

    @scenario
    async def test_send_receive_delete_round_trip(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        before = int(time.time() * 1000)
        [sent] = await q.send("jobs", [msg("derp")])
        assert sent.md5_of_body == "58fd9edd83341c29f1aebba81c31e257"
        assert sent.md5_of_message_attributes is None and sent.sequence_number is None
        [got] = await q.receive("jobs", max_messages=10)
        assert (got.message_id, got.body, got.md5_of_body) == (
            sent.message_id,
            "derp",
            sent.md5_of_body,
        )
        assert got.attributes["ApproximateReceiveCount"] == "1"
        assert got.attributes["SenderId"]
        sent_at = int(got.attributes["SentTimestamp"])
        assert before - 1000 <= sent_at <= int(time.time() * 1000) + 1000
        assert int(got.attributes["ApproximateFirstReceiveTimestamp"]) >= sent_at
        assert got.message_attributes == {} and got.md5_of_message_attributes is None
        assert await q.receive("jobs") == []  # in flight for 30 s
        assert await q.delete("jobs", [got.receipt_handle]) == [None]
        assert (await q.stats("jobs")).in_flight == 0

    @scenario
    async def test_message_attributes_round_trip_with_sqs_digests(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        # Digests SQS returns for these (pinned by moto's and LocalStack's test suites).
        for name, value, digest in [
            ("timestamp", "1493147359900", "235c5c510d26fb653d073faed50ae77c"),
            ("timestamp", "1493147359901", "994258b45346a2cc3f9cbb611aa7af30"),
            ("SOME_Valid.attribute-Name", "1493147359900", "36655e7e9d7c0e8479fa3f3f42247ae7"),
        ]:
            attributes = {name: {"DataType": "Number", "StringValue": value}}
            [sent] = await q.send("jobs", [msg("derp", message_attributes=attributes)])
            assert sent.md5_of_message_attributes == digest
        rich = {
            "b": {"DataType": "Binary.gz", "BinaryValue": b"\x00\xff"},
            "a": {"DataType": "String", "StringValue": "päivää"},
        }
        [sent] = await q.send("jobs", [msg("rich", message_attributes=rich)])
        received = {m.body: m for m in await q.receive("jobs", max_messages=10)}
        assert len(received) == 2  # bodies: derp (x3, any one) and rich
        got = received["rich"]
        assert got.message_attributes == rich
        assert got.md5_of_message_attributes == sent.md5_of_message_attributes

        # Hand-encoded per SQS's algorithm: length-prefixed name, type, transport byte, value.
        def field(data: bytes) -> bytes:
            return len(data).to_bytes(4, "big") + data

        expected = hashlib.md5(
            field(b"a")
            + field(b"String")
            + b"\x01"
            + field("päivää".encode())
            + field(b"b")
            + field(b"Binary.gz")
            + b"\x02"
            + field(b"\x00\xff")
        ).hexdigest()
        assert sent.md5_of_message_attributes == expected

    @scenario
    async def test_a_batch_with_one_bad_entry_sends_nothing(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        batch = [msg("ok"), msg("ok too"), msg(""), msg("fine")]
        error = await raises(MissingParameter, q.send("jobs", batch))
        assert error.entry == 2
        await raises(EmptyBatchRequest, q.send("jobs", []))
        await raises(TooManyEntriesInBatchRequest, q.send("jobs", [msg()] * 11))
        assert len(await q.send("jobs", [msg(str(i)) for i in range(10)])) == 10
        assert sorted(await drain(q, "jobs")) == [str(i) for i in range(10)]

    @scenario
    async def test_bodies_are_validated_like_sqs(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        await q.create_queue("small", {"MaximumMessageSize": "1024"})
        await raises(InvalidMessageContents, q.send("jobs", [msg("nul \x00 byte")]))
        await raises(InvalidMessageContents, q.send("jobs", [msg("lone \ud800 surrogate")]))
        assert await q.send("jobs", [msg("tab\tnewline\nemoji \U0001f600 \ufffd")])
        assert await q.send("jobs", [msg("x" * 1_048_576)])
        error = await raises(InvalidParameterValue, q.send("jobs", [msg("x" * 1_048_577)]))
        assert "1048576" in error.message
        assert await q.send("small", [msg("x" * 1024)])
        await raises(InvalidParameterValue, q.send("small", [msg("x" * 1025)]))
        attributes = {"k": {"DataType": "String", "StringValue": "v" * 20}}
        await raises(
            InvalidParameterValue, q.send("small", [msg("x" * 1000, message_attributes=attributes)])
        )
        await raises(BatchRequestTooLong, q.send("jobs", [msg("x" * 600_000)] * 2))

    @scenario
    async def test_message_attributes_are_validated_like_sqs(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        string = {"DataType": "String", "StringValue": "v"}
        bad: list[dict[str, Any]] = [
            {f"a{i}": string for i in range(11)},
            {"AWS.reserved": string},
            {"amazon.reserved": string},
            {".lead": string},
            {"trail.": string},
            {"two..dots": string},
            {"sp ace": string},
            {"k": {"DataType": "Text", "StringValue": "v"}},
            {"k": {"DataType": "String"}},
            {"k": {"DataType": "String", "StringValue": ""}},
            {"k": {"DataType": "Number", "StringValue": "twelve"}},
            {"k": {"DataType": "Number", "StringValue": "1e200"}},
            {"k": {"DataType": "Binary", "StringValue": "v"}},
        ]
        for attributes in bad:
            with pytest.raises((InvalidParameterValue, MissingParameter)):
                await q.send("jobs", [msg(message_attributes=attributes)])
        good = {
            "n": {"DataType": "Number.float", "StringValue": "-12.5e3"},
            "x.y-z_1": string,
        }
        assert await q.send("jobs", [msg(message_attributes=good)])
        assert (await q.stats("jobs")).visible == 1

    @scenario
    async def test_receive_parameters_are_range_checked(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        for options in [
            {"max_messages": 0},
            {"max_messages": 11},
            {"visibility_timeout": -1},
            {"visibility_timeout": 43_201},
            {"wait_seconds": 21},
        ]:
            await raises(InvalidParameterValue, q.receive("jobs", **options))

    @scenario
    async def test_a_mappings_receive_takes_more_than_ten(self, q: QueueBackend) -> None:
        """An event source mapping's poller claims its BatchSize at once (up to 10,000);
        anything else stays within ReceiveMessage's 10."""
        await q.create_queue("jobs", {})
        for first in range(0, 30, 10):
            await q.send("jobs", [msg(str(i)) for i in range(first, first + 10)])
        await raises(
            InvalidParameterValue, q.receive("jobs", max_messages=10_001, for_mapping=True)
        )
        got = await q.receive("jobs", max_messages=25, for_mapping=True)
        assert len(got) == 25 and len({m.message_id for m in got}) == 25
        assert [m.body for m in await q.receive("jobs", max_messages=10)] != []
        assert (await q.stats("jobs")).in_flight == 30

    # -- visibility -------------------------------------------------------------------

    @scenario
    async def test_unacknowledged_message_comes_back_after_visibility_timeout(
        self, q: QueueBackend
    ) -> None:
        await q.create_queue("jobs", {"VisibilityTimeout": "1"})
        await q.send("jobs", [msg("retry me")])
        [first] = await q.receive("jobs")
        assert await q.receive("jobs") == []
        stats = await q.stats("jobs")
        assert (stats.visible, stats.in_flight) == (0, 1)
        await asyncio.sleep(1.1)
        [second] = await q.receive("jobs")
        assert second.message_id == first.message_id
        assert second.receipt_handle != first.receipt_handle
        assert second.attributes["ApproximateReceiveCount"] == "2"
        first_seen = first.attributes["ApproximateFirstReceiveTimestamp"]
        assert second.attributes["ApproximateFirstReceiveTimestamp"] == first_seen

    @scenario
    async def test_receive_can_override_the_visibility_timeout(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        await q.send("jobs", [msg()])
        [first] = await q.receive("jobs", visibility_timeout=0)
        [again] = await q.receive("jobs", visibility_timeout=0)
        assert again.message_id == first.message_id
        assert again.attributes["ApproximateReceiveCount"] == "2"

    @scenario
    async def test_change_visibility(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {"VisibilityTimeout": "1"})
        await q.create_queue("other", {})
        await q.send("jobs", [msg()])
        [got] = await q.receive("jobs")
        await q.change_visibility("jobs", got.receipt_handle, 3)
        await asyncio.sleep(1.1)
        assert await q.receive("jobs") == []  # extended past the queue's 1 s
        await q.change_visibility("jobs", got.receipt_handle, 0)
        [again] = await q.receive("jobs", visibility_timeout=30)
        # The earlier receive's handle still works on the message received again, as in SQS.
        await q.change_visibility("jobs", got.receipt_handle, 0)
        [third] = await q.receive("jobs", visibility_timeout=30)
        assert third.message_id == got.message_id
        await raises(ReceiptHandleIsInvalid, q.change_visibility("jobs", "garbage", 5))
        await raises(ReceiptHandleIsInvalid, q.change_visibility("other", again.receipt_handle, 5))
        await raises(
            InvalidParameterValue, q.change_visibility("jobs", again.receipt_handle, 43_201)
        )
        await q.change_visibility("jobs", again.receipt_handle, 43_200)
        await q.delete("jobs", [again.receipt_handle])
        error = await raises(
            InvalidParameterValue, q.change_visibility("jobs", again.receipt_handle, 5)
        )
        assert "not available for visibility timeout change" in error.message

    @scenario
    async def test_change_visibility_after_timeout_ran_out_is_accepted_and_ignored(
        self, q: QueueBackend
    ) -> None:
        await q.create_queue("jobs", {"VisibilityTimeout": "1"})
        await q.send("jobs", [msg()])
        [got] = await q.receive("jobs")
        await asyncio.sleep(1.1)
        await q.change_visibility("jobs", got.receipt_handle, 60)
        assert [m.message_id for m in await q.receive("jobs")] == [got.message_id]

    @scenario
    async def test_delete_reports_per_handle(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        await q.create_queue("other", {})
        await q.send("jobs", [msg("a"), msg("b")])
        got = await q.receive("jobs", max_messages=10)
        results = await q.delete("jobs", ["garbage", got[0].receipt_handle])
        assert isinstance(results[0], ReceiptHandleIsInvalid) and results[0].entry == 0
        assert results[1] is None
        assert await q.delete("jobs", [got[0].receipt_handle]) == [None]  # twice is fine
        [wrong_queue] = await q.delete("other", [got[1].receipt_handle])
        assert isinstance(wrong_queue, ReceiptHandleIsInvalid)
        await raises(EmptyBatchRequest, q.delete("jobs", []))
        await raises(TooManyEntriesInBatchRequest, q.delete("jobs", [got[1].receipt_handle] * 11))
        assert (await q.stats("jobs")).in_flight == 1

    @scenario
    async def test_standard_delete_accepts_an_earlier_receipt_handle(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        await q.send("jobs", [msg()])
        [first] = await q.receive("jobs", visibility_timeout=0)
        [second] = await q.receive("jobs")
        assert await q.delete("jobs", [first.receipt_handle]) == [None]
        stats = await q.stats("jobs")
        assert (stats.visible, stats.in_flight) == (0, 0)
        assert second.message_id == first.message_id

    # -- delays and long polling ------------------------------------------------------

    @scenario
    async def test_delayed_messages(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {"DelaySeconds": "1"})
        await q.send("jobs", [msg("queue delay"), msg("no delay", delay_seconds=0)])
        assert [m.body for m in await q.receive("jobs", max_messages=10)] == ["no delay"]
        stats = await q.stats("jobs")
        assert (stats.visible, stats.in_flight, stats.delayed) == (0, 1, 1)
        attributes = await q.get_attributes("jobs")
        assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
        await raises(InvalidParameterValue, q.send("jobs", [msg(delay_seconds=901)]))
        await asyncio.sleep(1.1)
        assert [m.body for m in await q.receive("jobs")] == ["queue delay"]

    @scenario
    async def test_long_poll_returns_as_soon_as_a_message_is_sent(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})

        async def send_later() -> None:
            await asyncio.sleep(0.2)
            await q.send("jobs", [msg("late")])

        started = time.monotonic()
        sender = asyncio.create_task(send_later())
        got = await q.receive("jobs", wait_seconds=10)
        await sender
        assert [m.body for m in got] == ["late"]
        assert time.monotonic() - started < 1.0

    @scenario
    async def test_long_poll_wakes_when_a_delay_runs_out(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        await q.send("jobs", [msg("delayed", delay_seconds=1)])
        started = time.monotonic()
        got = await q.receive("jobs", wait_seconds=10)
        assert [m.body for m in got] == ["delayed"]
        assert 0.8 < time.monotonic() - started < 3

    @scenario
    async def test_long_poll_gives_up_after_wait_time(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {"ReceiveMessageWaitTimeSeconds": "1"})
        started = time.monotonic()
        assert await q.receive("jobs") == []  # waits the queue's 1 s
        assert 0.9 < time.monotonic() - started < 2
        started = time.monotonic()
        assert await q.receive("jobs", wait_seconds=0) == []
        assert time.monotonic() - started < 0.5

    # -- purge and stats ---------------------------------------------------------------

    @scenario
    async def test_purge_deletes_everything_once_a_minute(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        await q.send("jobs", [msg(str(i)) for i in range(5)])
        await q.receive("jobs", max_messages=2)
        await q.purge("jobs")
        stats = await q.stats("jobs")
        assert (stats.visible, stats.in_flight, stats.delayed) == (0, 0, 0)
        error = await raises(PurgeQueueInProgress, q.purge("jobs"))
        assert error.status == 403

    @scenario
    async def test_stats_count_each_state(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        await q.send("jobs", [msg("a"), msg("b"), msg("c"), msg("d", delay_seconds=60)])
        await q.receive("jobs", max_messages=1)
        stats = await q.stats("jobs")
        assert (stats.visible, stats.in_flight, stats.delayed) == (2, 1, 1)
        assert stats.oldest_age_seconds is not None and 0 <= stats.oldest_age_seconds < 5
        assert stats.dead_letter_queue is None

    # -- dead-letter queues -------------------------------------------------------------

    @scenario
    async def test_message_moves_to_dead_letter_queue_after_max_receives(
        self, q: QueueBackend
    ) -> None:
        await q.create_queue("jobs-dlq", {})
        policy = {"deadLetterTargetArn": ACCOUNT_ARN + "jobs-dlq", "maxReceiveCount": 2}
        await q.create_queue("jobs", {"RedrivePolicy": json.dumps(policy)})
        attributes = {"k": {"DataType": "String", "StringValue": "v"}}
        [sent] = await q.send("jobs", [msg("poison", message_attributes=attributes)])
        received, dead_depth = [], []
        for _ in range(3):
            received += [m.body for m in await q.receive("jobs", visibility_timeout=0)]
            dead_depth.append((await q.stats("jobs-dlq")).visible)
        # Delivered twice; the third receive, which would exceed 2, moved it instead.
        assert (received, dead_depth) == (["poison", "poison"], [0, 0, 1])
        stats = await q.stats("jobs")
        assert (
            stats.visible,
            stats.in_flight,
            stats.dead_letter_queue,
            stats.dead_letter_depth,
        ) == (
            0,
            0,
            "jobs-dlq",
            1,
        )
        [dead] = await q.receive("jobs-dlq")
        assert (dead.message_id, dead.body) == (sent.message_id, "poison")
        assert dead.message_attributes == attributes
        assert dead.md5_of_message_attributes == sent.md5_of_message_attributes
        assert dead.attributes["DeadLetterQueueSourceArn"] == ACCOUNT_ARN + "jobs"
        redrive = json.loads((await q.get_attributes("jobs"))["RedrivePolicy"])
        assert redrive == policy

    @scenario
    async def test_redrive_policy_is_validated(self, q: QueueBackend) -> None:
        await q.create_queue("dlq", {})
        await q.create_queue("dlq.fifo", {"FifoQueue": "true"})

        def policy(target: str, count: object = 3) -> str:
            return json.dumps(
                {"deadLetterTargetArn": ACCOUNT_ARN + target, "maxReceiveCount": count}
            )

        for value in [
            "not json",
            json.dumps({"deadLetterTargetArn": ACCOUNT_ARN + "dlq"}),
            policy("dlq", 0),
            policy("dlq", 1001),
            policy("missing"),
            policy("dlq.fifo"),
            json.dumps(
                {
                    "deadLetterTargetArn": "arn:aws:sqs:eu-west-1:999999999999:dlq",
                    "maxReceiveCount": 3,
                }
            ),
        ]:
            await raises(InvalidAttributeValue, q.create_queue("jobs", {"RedrivePolicy": value}))
        assert await q.list_queues() == ["dlq", "dlq.fifo"]
        await q.create_queue("jobs", {"RedrivePolicy": policy("dlq", "5")})
        await q.set_attributes("jobs", {"RedrivePolicy": ""})
        assert "RedrivePolicy" not in await q.get_attributes("jobs")

    @scenario
    async def test_a_queue_may_be_its_own_dead_letter_queue(self, q: QueueBackend) -> None:
        policy = json.dumps({"deadLetterTargetArn": ACCOUNT_ARN + "self", "maxReceiveCount": 1})
        await q.create_queue("self", {"RedrivePolicy": policy})
        await q.send("self", [msg("kept")])
        for count in ("1", "2", "3"):  # past maxReceiveCount it stays, and is delivered
            [got] = await q.receive("self", visibility_timeout=0)
            assert (got.body, got.attributes["ApproximateReceiveCount"]) == ("kept", count)

    @scenario
    async def test_redrive_moves_messages_back_to_their_source(self, q: QueueBackend) -> None:
        await q.create_queue("dlq", {})
        await q.create_queue("other", {})
        policy = json.dumps({"deadLetterTargetArn": ACCOUNT_ARN + "dlq", "maxReceiveCount": 1})
        await q.create_queue("jobs", {"RedrivePolicy": policy})
        await q.send("jobs", [msg("a"), msg("b")])
        for _ in range(2):
            await q.receive("jobs", max_messages=10, visibility_timeout=0)
        assert (await q.stats("dlq")).visible == 2
        await raises(InvalidParameterValue, q.redrive("other"))
        assert await q.redrive("dlq") == 2
        got = await q.receive("jobs", max_messages=10, visibility_timeout=0)
        assert sorted(m.body for m in got) == ["a", "b"]
        assert {m.attributes["ApproximateReceiveCount"] for m in got} == {"1"}
        assert all("DeadLetterQueueSourceArn" not in m.attributes for m in got)
        for _ in range(2):
            await q.receive("jobs", max_messages=10, visibility_timeout=0)
        assert await q.redrive("dlq", destination="other") == 2
        assert sorted(await drain(q, "other")) == ["a", "b"]

    # -- FIFO queues ------------------------------------------------------------------

    @scenario
    async def test_fifo_send_rules(self, q: QueueBackend) -> None:
        info = await q.create_queue("jobs.fifo", {"FifoQueue": "true"})
        assert info.fifo
        attributes = await q.get_attributes("jobs.fifo")
        assert (attributes["FifoQueue"], attributes["ContentBasedDeduplication"]) == (
            "true",
            "false",
        )
        await raises(MissingParameter, q.send("jobs.fifo", [msg(message_deduplication_id="d")]))
        await raises(InvalidParameterValue, q.send("jobs.fifo", [msg(message_group_id="g")]))
        await raises(
            InvalidParameterValue,
            q.send(
                "jobs.fifo",
                [msg(message_group_id="g", message_deduplication_id="d", delay_seconds=5)],
            ),
        )
        await raises(
            InvalidParameterValue,
            q.send("jobs.fifo", [msg(message_group_id="g" * 129, message_deduplication_id="d")]),
        )
        await q.create_queue("plain", {})
        await raises(InvalidParameterValue, q.send("plain", [msg(message_deduplication_id="d")]))
        assert (await q.stats("jobs.fifo")).visible == 0

    @scenario
    async def test_fifo_delivers_each_group_in_order_one_batch_at_a_time(
        self, q: QueueBackend
    ) -> None:
        await q.create_queue(
            "jobs.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )
        sent = await q.send(
            "jobs.fifo",
            [msg(body, message_group_id=body[0]) for body in ["a1", "b1", "a2", "a3", "b2"]],
        )
        sequences = [int(s.sequence_number or "") for s in sent]
        assert sequences == sorted(sequences) and len(set(sequences)) == 5
        [first] = await q.receive("jobs.fifo")
        assert first.body == "a1"
        assert first.attributes["MessageGroupId"] == "a"
        assert first.attributes["SequenceNumber"] == sent[0].sequence_number
        # Group a is blocked while a1 is in flight; b is delivered, as much of it as possible.
        assert [m.body for m in await q.receive("jobs.fifo", max_messages=10)] == ["b1", "b2"]
        assert await q.receive("jobs.fifo", max_messages=10) == []
        await q.delete("jobs.fifo", [first.receipt_handle])
        await q.send("jobs.fifo", [msg("a4", message_group_id="a")])
        a2, a3, a4 = await q.receive("jobs.fifo", max_messages=10)
        assert [a2.body, a3.body, a4.body] == ["a2", "a3", "a4"]
        # a3 given back waits while a2, before it, is in flight.
        await q.change_visibility("jobs.fifo", a3.receipt_handle, 0)
        assert await q.receive("jobs.fifo", max_messages=10) == []
        # a2 given back too: both are delivered again, in order, though a4 (behind them) is
        # still in flight; receiving stops there.
        await q.change_visibility("jobs.fifo", a2.receipt_handle, 0)
        again = await q.receive("jobs.fifo", max_messages=10)
        assert [m.body for m in again] == ["a2", "a3"]
        await q.change_visibility("jobs.fifo", a4.receipt_handle, 0)
        assert await q.receive("jobs.fifo", max_messages=10) == []  # a2 and a3 in flight

    @scenario
    async def test_fifo_redelivers_in_order_after_visibility_timeout(self, q: QueueBackend) -> None:
        await q.create_queue(
            "jobs.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )
        await q.send("jobs.fifo", [msg(f"m{i}", message_group_id="g") for i in range(3)])
        got = await q.receive("jobs.fifo", max_messages=2, visibility_timeout=1)
        assert [m.body for m in got] == ["m0", "m1"]
        await asyncio.sleep(1.1)
        # The expired handle no longer deletes: that would break the order for the next holder.
        [expired] = await q.delete("jobs.fifo", [got[0].receipt_handle])
        assert isinstance(expired, InvalidParameterValue)
        again = await q.receive("jobs.fifo", max_messages=10)
        assert [m.body for m in again] == ["m0", "m1", "m2"]
        assert [m.attributes["ApproximateReceiveCount"] for m in again] == ["2", "2", "1"]

    @scenario
    async def test_fifo_deduplicates_within_five_minutes(self, q: QueueBackend) -> None:
        await q.create_queue("ids.fifo", {"FifoQueue": "true"})
        await q.create_queue(
            "content.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )
        first = await q.send(
            "ids.fifo", [msg("one", message_group_id="g", message_deduplication_id="x")]
        )
        again = await q.send(
            "ids.fifo",
            [
                msg("one again", message_group_id="g", message_deduplication_id="x"),
                msg("two", message_group_id="g", message_deduplication_id="y"),
                msg("two again", message_group_id="g", message_deduplication_id="y"),
            ],
        )
        assert again[0].message_id == first[0].message_id
        assert again[2].message_id == again[1].message_id
        assert await drain(q, "ids.fifo") == ["one", "two"]
        a = await q.send("content.fifo", [msg("same", message_group_id="g")])
        b = await q.send("content.fifo", [msg("same", message_group_id="h")])
        assert a[0].message_id == b[0].message_id
        [got] = await q.receive("content.fifo")
        assert got.attributes["MessageDeduplicationId"] == (
            "0967115f2813a3541eaef77de9d9d5773f1c0c04314b0bbfe4ff3b3b1c55b5d5"  # sha256("same")
        )

    @scenario
    async def test_fifo_dead_letter_queue_must_be_fifo_and_keeps_group(
        self, q: QueueBackend
    ) -> None:
        await q.create_queue("dlq.fifo", {"FifoQueue": "true"})
        policy = json.dumps({"deadLetterTargetArn": ACCOUNT_ARN + "dlq.fifo", "maxReceiveCount": 1})
        await q.create_queue("jobs.fifo", {"FifoQueue": "true", "RedrivePolicy": policy})
        await q.send("jobs.fifo", [msg("m", message_group_id="g", message_deduplication_id="d")])
        assert len(await q.receive("jobs.fifo", visibility_timeout=0)) == 1
        assert await q.receive("jobs.fifo", visibility_timeout=0) == []
        [dead] = await q.receive("dlq.fifo")
        assert (dead.body, dead.attributes["MessageGroupId"]) == ("m", "g")
        assert dead.attributes["SequenceNumber"]

    @scenario
    async def test_fifo_purge_forgets_deduplication_ids(self, q: QueueBackend) -> None:
        await q.create_queue("ids.fifo", {"FifoQueue": "true"})
        one = msg("one", message_group_id="g", message_deduplication_id="x")
        await q.send("ids.fifo", [one])
        await q.purge("ids.fifo")
        [sent] = await q.send("ids.fifo", [one])  # new after the purge, not a duplicate
        assert [m.message_id for m in await q.receive("ids.fifo")] == [sent.message_id]

    @scenario
    async def test_fifo_delay_zero_means_the_queues_delay(self, q: QueueBackend) -> None:
        await q.create_queue("slow.fifo", {"FifoQueue": "true", "DelaySeconds": "1"})
        await q.send(
            "slow.fifo", [msg(message_group_id="g", message_deduplication_id="d", delay_seconds=0)]
        )
        stats = await q.stats("slow.fifo")
        assert (stats.visible, stats.delayed) == (0, 1)

    # -- tags and system attributes ---------------------------------------------------

    @scenario
    async def test_tags(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {}, {"team": "a", "cost": "1"})
        assert await q.list_tags("jobs") == {"team": "a", "cost": "1"}
        await q.tag_queue("jobs", {"team": "b", "env": "dev"})
        await q.untag_queue("jobs", ["cost", "not-there"])
        assert await q.list_tags("jobs") == {"team": "b", "env": "dev"}
        await raises(InvalidParameterValue, q.tag_queue("jobs", {"": "empty key"}))
        await raises(InvalidParameterValue, q.tag_queue("jobs", {f"k{i}": "v" for i in range(49)}))
        assert await q.list_tags("jobs") == {"team": "b", "env": "dev"}  # refused whole
        await raises(QueueDoesNotExist, q.list_tags("missing"))
        await q.delete_queue("jobs")
        await q.create_queue("jobs", {})
        assert await q.list_tags("jobs") == {}

    @scenario
    async def test_trace_header_travels_with_the_message(self, q: QueueBackend) -> None:
        await q.create_queue("jobs", {})
        trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
        system = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
        [sent] = await q.send("jobs", [msg(system_attributes=system)])
        # The digest of MessageAttributes' algorithm, over the system attributes.
        assert sent.md5_of_message_system_attributes == "5f48eef650c1d0207456969c85af2fdd"
        [got] = await q.receive("jobs")
        assert got.attributes["AWSTraceHeader"] == trace
        await raises(
            InvalidParameterValue,
            q.send("jobs", [msg(system_attributes={"Other": system["AWSTraceHeader"]})]),
        )

    @scenario
    async def test_redrive_moves_at_most_its_limit(self, q: QueueBackend) -> None:
        await q.create_queue("dlq", {})
        policy = json.dumps({"deadLetterTargetArn": ACCOUNT_ARN + "dlq", "maxReceiveCount": 1})
        await q.create_queue("jobs", {"RedrivePolicy": policy})
        await q.send("jobs", [msg("a"), msg("b"), msg("c")])
        for _ in range(2):
            await q.receive("jobs", max_messages=10, visibility_timeout=0)
        assert await q.redrive("dlq", limit=0) == 0
        assert await q.redrive("dlq", limit=2) == 2
        assert ((await q.stats("jobs")).visible, (await q.stats("dlq")).visible) == (2, 1)
