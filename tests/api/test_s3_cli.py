"""The real AWS CLI (``aws s3``, the awscli package) and boto3's transfer manager against
the S3 API: multipart uploads, ranged downloads, sync, mv, rm and presigned URLs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from boto3.s3.transfer import TransferConfig

from api.s3_support import events, root, s3, url

__all__ = ["events", "root", "s3", "url"]  # fixtures used below

MiB = 1024 * 1024


def aws(base: str, *args: str, cwd: Path | None = None) -> str:
    """Run ``aws ARGS`` against ``base`` only: fake keys, no config files, no real AWS."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd or Path.cwd()),
        "AWS_ENDPOINT_URL": base,
        "AWS_ACCESS_KEY_ID": "AKIDLOCAL",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "awscli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def keys(s3: Any, bucket: str = "bkt") -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_cli_copies_20_mb_up_and_down_in_parts(
    s3: Any, url: str, tmp_path: Path, events: list[Any], root: Path
) -> None:
    data = os.urandom(20 * MiB + 17)
    source, target = tmp_path / "up.bin", tmp_path / "down.bin"
    source.write_bytes(data)
    aws(url, "s3", "cp", str(source), "s3://bkt/big/file.bin", cwd=tmp_path)
    # The CLI uploads anything over 8 MiB in 8 MiB parts: three here.
    head = s3.head_object(Bucket="bkt", Key="big/file.bin")
    assert head["ContentLength"] == len(data)
    part_md5s = b"".join(
        hashlib.md5(data[i : i + 8 * MiB]).digest() for i in range(0, len(data), 8 * MiB)
    )
    assert head["ETag"] == f'"{hashlib.md5(part_md5s).hexdigest()}-3"'
    assert [e[0] for e in events] == ["ObjectCreated:CompleteMultipartUpload"]
    aws(url, "s3", "cp", "s3://bkt/big/file.bin", str(target), cwd=tmp_path)
    assert target.read_bytes() == data
    # Nothing of the upload is left behind: no parts, no temporary files.
    assert s3.list_multipart_uploads(Bucket="bkt").get("Uploads", []) == []
    leftovers = [p for p in (root / "bkt" / ".skylift").rglob("*") if p.is_file()]
    assert [p.name for p in leftovers] == ["bucket.json"]


def test_cli_sync_mv_and_recursive_rm(s3: Any, url: str, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    (folder / "css").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>hi</h1>")
    (folder / "css" / "main.css").write_text("h1 {}")
    earlier = time.time() - 60  # S3's times have whole seconds: files older than a second
    for path in (folder / "index.html", folder / "css" / "main.css"):
        os.utime(path, (earlier, earlier))
    aws(url, "s3", "sync", str(folder), "s3://bkt/site", cwd=tmp_path)
    assert keys(s3) == ["site/css/main.css", "site/index.html"]
    # A second sync finds nothing to do; a changed file is sent again.
    assert aws(url, "s3", "sync", str(folder), "s3://bkt/site", cwd=tmp_path) == ""
    (folder / "index.html").write_text("<h1>hello again</h1>")  # another size
    out = aws(url, "s3", "sync", str(folder), "s3://bkt/site", cwd=tmp_path)
    assert "index.html" in out and "main.css" not in out
    got = s3.get_object(Bucket="bkt", Key="site/index.html")
    assert got["Body"].read() == b"<h1>hello again</h1>"
    assert got["ContentType"] == "text/html"  # the CLI guesses it; S3 keeps it

    aws(url, "s3", "mv", "s3://bkt/site/index.html", "s3://bkt/moved/index.html", cwd=tmp_path)
    assert keys(s3) == ["moved/index.html", "site/css/main.css"]
    back = tmp_path / "back"
    aws(url, "s3", "sync", "s3://bkt", str(back), cwd=tmp_path)
    assert (back / "moved" / "index.html").read_text() == "<h1>hello again</h1>"

    aws(url, "s3", "rm", "s3://bkt", "--recursive", cwd=tmp_path)
    assert keys(s3) == []


def test_cli_presign_gives_a_url_a_plain_get_can_use(s3: Any, url: str, tmp_path: Path) -> None:
    s3.put_object(Bucket="bkt", Key="shared/report 1.txt", Body=b"for your eyes")
    link = aws(url, "s3", "presign", "s3://bkt/shared/report 1.txt", cwd=tmp_path).strip()
    got = httpx.get(link)
    assert (got.status_code, got.content) == (200, b"for your eyes")
    expired = aws(
        url, "s3", "presign", "s3://bkt/shared/report 1.txt", "--expires-in", "-5", cwd=tmp_path
    ).strip()
    refused = httpx.get(expired)
    assert refused.status_code == 403
    assert "<Code>AccessDenied</Code>" in refused.text
    assert "<Message>Request has expired</Message>" in refused.text


@pytest.mark.parametrize("threshold", [5 * MiB])
def test_boto3_transfers_50_mb_in_parts(
    s3: Any, tmp_path: Path, threshold: int, events: list[Any]
) -> None:
    data = os.urandom(50 * MiB)
    source, target = tmp_path / "up.bin", tmp_path / "down.bin"
    source.write_bytes(data)
    config = TransferConfig(
        multipart_threshold=threshold, multipart_chunksize=threshold, max_concurrency=4
    )
    s3.upload_file(str(source), "bkt", "big.bin", Config=config)
    head = s3.head_object(Bucket="bkt", Key="big.bin", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-10"')
    s3.download_file("bkt", "big.bin", str(target), Config=config)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert [e[0] for e in events] == ["ObjectCreated:CompleteMultipartUpload"]
