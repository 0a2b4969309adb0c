"""A backup taken while `skylift up` takes queue and upload traffic restores to a server
that holds every message and object acknowledged before the backup began."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from backup_helpers import client, drain, skylift, write_app

from skylift.testing import serve


class Load:
    """Sends messages and uploads objects from two threads until stopped, recording
    when each was acknowledged (the call returned)."""

    def __init__(self, url: str) -> None:
        self.sqs, self.s3 = client("sqs", url), client("s3", url)
        self.queue_url = self.sqs.get_queue_url(QueueName="work")["QueueUrl"]
        self.messages: list[tuple[float, str]] = []
        self.objects: list[tuple[float, str, str]] = []  # (acked at, key, sha256)
        self.hot_writes = 0
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._guard, args=(f,)) for f in (self._send, self._upload)
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        assert not self.errors, self.errors

    def _guard(self, work: Any) -> None:
        try:
            work()
        except BaseException as exc:
            self.errors.append(exc)

    def _send(self) -> None:
        n = 0
        while not self.stop.is_set():
            bodies = [f"load-{n + i}" for i in range(10)]
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            assert len(answer["Successful"]) == 10
            acked = time.monotonic()
            self.messages.extend((acked, b) for b in bodies)
            n += 10

    def _upload(self) -> None:
        n = 0
        while not self.stop.is_set():
            body = os.urandom(1000 + (n * 7919) % 120_000)
            digest = hashlib.sha256(body).hexdigest()
            key = f"load/{n:05d}.bin"
            self.s3.put_object(Bucket="files", Key=key, Body=body, Metadata={"sha256": digest})
            self.objects.append((time.monotonic(), key, digest))
            # One key written again and again: whichever version the backup holds must be
            # whole, its bytes matching the checksum stored with that same version.
            hot = os.urandom(60_000 + n % 20_000)
            self.s3.put_object(
                Bucket="files",
                Key="hot.bin",
                Body=hot,
                Metadata={"sha256": hashlib.sha256(hot).hexdigest()},
            )
            self.hot_writes += 1
            n += 1


def test_backup_under_load_restores_everything_acknowledged_before_it(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    archive = tmp_path / "backups" / "app.tar"
    with serve(str(app), options=["--quiet"]) as url:
        sqs, s3 = client("sqs", url), client("s3", url)
        work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
        orders = sqs.get_queue_url(QueueName="orders.fifo")["QueueUrl"]
        for i in range(20):
            sqs.send_message(
                QueueUrl=orders,
                MessageBody=f"order-{i}",
                MessageGroupId=f"g{i % 3}",
                MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}},
            )
        # A message received (in flight) at backup time is still there after a restore.
        sqs.send_message(QueueUrl=work, MessageBody="in-flight")
        assert sqs.receive_message(QueueUrl=work)["Messages"][0]["Body"] == "in-flight"
        big = os.urandom(5 * 1024 * 1024)
        s3.put_object(
            Bucket="files",
            Key="big/blob.bin",
            Body=big,
            ContentType="application/x-thing",
            Metadata={"owner": "ops"},
        )
        with Load(url) as load:
            while len(load.objects) < 15 or len(load.messages) < 300:
                time.sleep(0.05)
            began = time.monotonic()
            done = skylift("backup", str(archive), str(app))
            ended = time.monotonic()
            time.sleep(0.3)  # some traffic after the backup too
        # The traffic went on while the backup ran.
        assert any(began < acked < ended for acked, _ in load.messages)
        assert any(began < acked < ended for acked, _, _ in load.objects)
        assert "messages" in done.stdout and "objects" in done.stdout, done.stdout

    skylift("restore", str(archive), "--verify-only")
    fresh = tmp_path / "restored"
    restored = skylift("restore", str(archive), "--to", str(fresh))
    assert (fresh / "app.py").read_text() == (app / "app.py").read_text(), restored.stdout

    with serve(str(fresh), options=["--quiet"]) as url:
        sqs, s3 = client("sqs", url), client("s3", url)
        work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
        counts = sqs.get_queue_attributes(QueueUrl=work, AttributeNames=["All"])["Attributes"]
        # The message received before the backup is still in flight (its timeout is 60 s).
        assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
        bodies = [m["Body"] for m in drain(sqs, "work")]
        assert len(bodies) == len(set(bodies))  # none twice
        before = {b for acked, b in load.messages if acked < began}
        assert before <= set(bodies), f"lost {len(before - set(bodies))} messages"
        # Nothing acknowledged after the backup ended can be in it.
        after = {b for acked, b in load.messages if acked > ended}
        assert not after & set(bodies)
        assert "in-flight" not in bodies
        orders_url = sqs.get_queue_url(QueueName="orders.fifo")["QueueUrl"]
        fifo = []
        for _ in range(20):
            got = sqs.receive_message(
                QueueUrl=orders_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            for m in got:
                fifo.append(m["Body"])
                sqs.delete_message(QueueUrl=orders_url, ReceiptHandle=m["ReceiptHandle"])
            if len(fifo) == 20:
                break
        assert sorted(fifo) == sorted(f"order-{i}" for i in range(20))
        for group in range(3):  # each group in its order
            mine = [b for b in fifo if int(b.split("-")[1]) % 3 == group]
            assert mine == sorted(mine, key=lambda b: int(b.split("-")[1]))

        got = s3.get_object(Bucket="files", Key="big/blob.bin")
        assert got["Body"].read() == big
        assert got["ContentType"] == "application/x-thing"
        assert got["Metadata"] == {"owner": "ops"}
        for acked, key, digest in load.objects:
            if acked < began:
                found = s3.get_object(Bucket="files", Key=key)
                assert hashlib.sha256(found["Body"].read()).hexdigest() == digest, key
                assert found["Metadata"]["sha256"] == digest
        hot = s3.get_object(Bucket="files", Key="hot.bin")
        assert hashlib.sha256(hot["Body"].read()).hexdigest() == hot["Metadata"]["sha256"]
        # Every object listed reads back whole: none torn between two versions.
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="files"):
            for entry in page.get("Contents", []):
                found = s3.get_object(Bucket="files", Key=entry["Key"])
                body = found["Body"].read()
                assert len(body) == entry["Size"]
                if "sha256" in found["Metadata"]:
                    assert hashlib.sha256(body).hexdigest() == found["Metadata"]["sha256"]
