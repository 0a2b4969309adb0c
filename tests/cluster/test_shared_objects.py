"""Two nodes on one Redis and one objects folder (`--objects DIR`): an object put through
either node is read through the other, its upload event fires once, and writes to one key
from both nodes leave a whole object, never one version's bytes with another's ETag."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from pathlib import Path

import boto3
from cluster_helpers import CLIENT, URL, nodes, redis_prefix, reports, write_apps

__all__ = ["redis_prefix"]  # a fixture, used by name

APP = """
    @app.upload("uploads", prefix="in/")
    def uploaded(event, context):
        for record in event["Records"]:
            report(key=record["s3"]["object"]["key"], event=record["eventName"])
"""


def test_nodes_share_buckets_and_fire_each_upload_event_once(
    tmp_path: Path, redis_prefix: str
) -> None:
    shared = tmp_path / "objects"
    options = ["--quiet", "--state", f"{URL}?prefix={redis_prefix}", "--objects", str(shared)]
    with nodes(write_apps(tmp_path, APP), options) as [url_one, url_two]:
        s3 = [boto3.client("s3", endpoint_url=url, **CLIENT) for url in (url_one, url_two)]
        for n in range(10):
            s3[n % 2].put_object(Bucket="uploads", Key=f"in/{n}.txt", Body=f"body {n}".encode())
        for n in range(10):  # each read through the node that did not take it
            got = s3[(n + 1) % 2].get_object(Bucket="uploads", Key=f"in/{n}.txt")
            assert got["Body"].read() == f"body {n}".encode()
        found = reports(url_one, 10)
        assert Counter(r["key"] for r in found) == Counter(f"in/{n}.txt" for n in range(10))
        assert {r["event"] for r in found} == {"ObjectCreated:Put"}
        assert not reports(url_one, 1, timeout=2)  # and no event twice

        # Both nodes write one key at once: the last whole version wins.
        bodies = [bytes([65 + i]) * (64 * 1024 + i) for i in range(8)]

        def write(i: int) -> None:
            for _ in range(10):
                s3[i % 2].put_object(
                    Bucket="uploads", Key="same.bin", Body=bodies[i], Metadata={"writer": str(i)}
                )

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for client in s3:
            got = client.get_object(Bucket="uploads", Key="same.bin")
            body = got["Body"].read()
            assert body in bodies
            assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
            assert got["ContentLength"] == len(body)
            assert got["Metadata"] == {"writer": str(bodies.index(body))}  # its own metadata
    # The buckets were in the shared folder, not in either node's own state.
    assert (shared / "uploads").is_dir()
    assert not (tmp_path / "one" / ".skylift" / "objects" / "uploads").exists()
