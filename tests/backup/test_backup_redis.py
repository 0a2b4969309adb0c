"""With `--state redis://...`, a backup holds a dump of every key under skylift's prefix,
and a restore writes them back into an empty Redis prefix."""

from __future__ import annotations

import sys
from pathlib import Path

from backup_helpers import client, drain, skylift, write_app

from skylift.testing import serve

sys.path.insert(0, str(Path(__file__).parents[1] / "queues"))
from redis_server import URL, clean, redis_prefix

__all__ = ["redis_prefix"]  # a fixture


def test_queues_in_redis_are_backed_up_and_restored(redis_prefix: str, tmp_path: Path) -> None:
    state = f"{URL}?prefix={redis_prefix}"
    app = write_app(tmp_path / "app")
    archive = tmp_path / "redis.tar"
    with serve(str(app), options=["--quiet", "--state", state]) as url:
        sqs, s3 = client("sqs", url), client("s3", url)
        work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
        for start in range(0, 50, 10):
            entries = [{"Id": str(i), "MessageBody": f"r{start + i}"} for i in range(10)]
            sqs.send_message_batch(QueueUrl=work, Entries=entries)
        s3.put_object(Bucket="files", Key="a.txt", Body=b"alpha")
        done = skylift("backup", str(archive), str(app), "--state", state)
    assert "50 messages" in done.stdout and "Redis keys" in done.stdout, done.stdout

    # Without a Redis to restore the queues into, nothing is restored.
    refused = skylift("restore", str(archive), "--to", str(tmp_path / "x"), check=False)
    assert refused.returncode == 2 and "--state redis://" in refused.stderr
    assert not (tmp_path / "x").exists()
    # Nor into a prefix that still holds keys.
    busy = skylift(
        "restore", str(archive), "--to", str(tmp_path / "x"), "--state", state, check=False
    )
    assert busy.returncode == 2 and "already holds keys" in busy.stderr, busy.stderr
    assert not (tmp_path / "x").exists()

    clean(redis_prefix)  # Redis lost its data
    fresh = tmp_path / "restored"
    skylift("restore", str(archive), "--to", str(fresh), "--state", state)
    with serve(str(fresh), options=["--quiet", "--state", state]) as url:
        sqs, s3 = client("sqs", url), client("s3", url)
        bodies = sorted(m["Body"] for m in drain(sqs, "work"))
        assert bodies == sorted(f"r{i}" for i in range(50))
        assert s3.get_object(Bucket="files", Key="a.txt")["Body"].read() == b"alpha"
