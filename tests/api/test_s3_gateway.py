"""The S3 API behind `skylift up`'s one port: what only the gateway and a restart show."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from skylift.testing import serve

# The handlers record events in a file beside their code, which the sandbox makes read-only.
SANDBOX_OFF = ["--sandbox", "off"]

APP = """
import json, os
from skylift import App

app = App()
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen.jsonl")


@app.http("/{proxy+}", methods=["GET"])
def catch_all(event, context):
    return {"app": True}


@app.upload("media")
def created(event, context):
    with open(LOG, "a") as f:
        f.write(json.dumps(event["Records"][0]["eventName"]) + "\\n")
"""


def client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def seen(directory: Path, count: int, timeout: float = 15) -> list[str]:
    path = directory / "seen.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            names = [json.loads(line) for line in path.read_text().splitlines()]
            if len(names) >= count:
                return names
        time.sleep(0.05)
    raise AssertionError(f"the upload function was not invoked {count} times")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return tmp_path


def test_presigned_and_virtual_hosted_requests_reach_s3_not_the_app(app_dir: Path) -> None:
    with serve(str(app_dir), options=SANDBOX_OFF) as url:
        s3 = client(url)
        s3.put_object(Bucket="media", Key="a.txt", Body=b"shared")
        # boto3's default presigned URL is SigV2: no header says "S3" but its query.
        link = s3.generate_presigned_url("get_object", Params={"Bucket": "media", "Key": "a.txt"})
        assert "AWSAccessKeyId=" in link
        assert httpx.get(link).content == b"shared"
        port = url.rsplit(":", 1)[1]
        virtual = {"host": f"media.s3.localhost:{port}", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
        assert httpx.get(url + "/a.txt", headers=virtual).content == b"shared"
        # A BUCKET.s3.localhost host is S3's even without an SDK's headers (curl, a browser).
        plain = {"host": f"media.s3.localhost:{port}"}
        assert httpx.get(url + "/a.txt", headers=plain).content == b"shared"
        assert httpx.get(url + "/media/a.txt").json() == {"app": True}  # plain GET: the app's


def test_copy_and_multipart_fire_their_events_and_restart_sweeps_uploads(app_dir: Path) -> None:
    with serve(str(app_dir), options=SANDBOX_OFF) as url:
        s3 = client(url)
        s3.put_object(Bucket="media", Key="one", Body=b"1")
        s3.copy_object(Bucket="media", Key="two", CopySource="media/one")
        upload_id = s3.create_multipart_upload(Bucket="media", Key="three")["UploadId"]
        etag = s3.upload_part(
            Bucket="media", Key="three", UploadId=upload_id, PartNumber=1, Body=b"3"
        )["ETag"]
        s3.complete_multipart_upload(
            Bucket="media",
            Key="three",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
        )
        assert sorted(seen(app_dir, 3)) == [
            "ObjectCreated:CompleteMultipartUpload",
            "ObjectCreated:Copy",
            "ObjectCreated:Put",
        ]
        abandoned = s3.create_multipart_upload(Bucket="media", Key="abandoned")["UploadId"]
        s3.upload_part(
            Bucket="media", Key="abandoned", UploadId=abandoned, PartNumber=1, Body=b"x" * 1000
        )
    uploads = app_dir / ".skylift" / "objects" / "media" / ".skylift" / "uploads"
    assert any(uploads.rglob("*.part"))  # left behind by the stopped server
    with serve(str(app_dir), options=SANDBOX_OFF) as url:
        s3 = client(url)
        assert s3.list_multipart_uploads(Bucket="media").get("Uploads", []) == []
        assert not any(uploads.rglob("*"))
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="media")["Contents"]]
        assert keys == ["one", "three", "two"]  # objects survive; only the parts go
