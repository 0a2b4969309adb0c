"""What the S3 API tests share: a real uvicorn server on a free port, the boto3 client
pointed at it, and the fixtures built on them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
import uvicorn
from botocore.exceptions import ClientError

from skylift.api import S3Api
from skylift.storage import DirectoryStore, ObjectInfo

SESSION = boto3.session.Session(
    aws_access_key_id="AKIDLOCAL", aws_secret_access_key="local", region_name="us-east-1"
)
PATH_STYLE = botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})


class Recorder:
    """Wraps an ASGI app and notes each request's method, path and headers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.requests.append((scope["method"], scope["path"], headers))
        await self.app(scope, receive, send)


@contextmanager
def serve(app: Any, certificate: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port of 127.0.0.1; yields its base URL."""
    tls = {}
    if certificate is not None:
        tls = {"ssl_certfile": str(certificate[0]), "ssl_keyfile": str(certificate[1])}
    # A client's idle TLS connection can hold a graceful shutdown open; cut it short.
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1, **tls
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.005)
    try:
        yield f"{'https' if certificate else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def client(url: str, verify: str | None = None) -> Any:
    return SESSION.client("s3", endpoint_url=url, config=PATH_STYLE, verify=verify)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def events() -> list[tuple[str, str, ObjectInfo | str, str]]:
    return []


@pytest.fixture
def url(root: Path, events: list[Any]) -> Iterator[str]:
    async def on_change(name: str, bucket: str, subject: ObjectInfo | str, rid: str) -> None:
        events.append((name, bucket, subject, rid))

    with serve(S3Api(DirectoryStore(root), region="us-east-1", on_change=on_change)) as base:
        yield base


@pytest.fixture
def s3(url: str) -> Any:
    s3 = client(url)
    s3.create_bucket(Bucket="bkt")
    return s3


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: boto3 sends aws-chunked bodies only over TLS."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a TLS certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}
