"""What a write cut off by a kill leaves behind is removed when the store opens again;
stored objects are untouched."""

from __future__ import annotations

import textwrap
from pathlib import Path

import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints

from skylift.testing import serve

APP = """
from skylift import App

app = App()
app.declare_bucket("uploads")


@app.function()
def noop(event, context):
    return None
"""


def s3(url: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_an_upload_killed_mid_write_leaves_nothing_after_a_restart(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    tmp = tmp_path / ".skylift" / "objects" / "uploads" / ".skylift" / "tmp"
    with serve(str(tmp_path), options=["--quiet"]) as url:
        s3(url).put_object(Bucket="uploads", Key="kept.txt", Body=b"kept")
    # What a server killed inside a PUT leaves: the data written so far, the metadata not.
    (tmp / "0f1e2d3c4b5a69788796a5b4c3d2e1f0.data").write_bytes(b"\0" * (4 << 20))
    (tmp / "0f1e2d3c4b5a69788796a5b4c3d2e1f0.upload").write_bytes(b"\0" * 1024)
    with serve(str(tmp_path), options=["--quiet"]) as url:
        assert list(tmp.iterdir()) == []
        body = s3(url).get_object(Bucket="uploads", Key="kept.txt")["Body"].read()
        assert body == b"kept"
