"""A real S3-compatible server on loopback for the ``S3Store`` tests: moto's standalone
``moto_server`` (the ``moto[server]`` test extra), started once per test session in its
own process and emptied after each test (``POST /moto-api/reset``).

Without ``moto_server`` the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# The server's own credentials, in the environment as skylift reads them (never real ones).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "skylift-test", "AWS_SECRET_ACCESS_KEY": "skylift-test"}


def executable() -> str | None:
    beside = Path(sys.executable).with_name("moto_server")
    return str(beside) if beside.exists() else shutil.which("moto_server")


def require() -> str:
    found = executable()
    if found is not None:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("moto_server is missing; CI installs it with the test extra (moto[server])")
    pytest.skip("no moto_server (pip install 'moto[server]') to serve S3 on loopback")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoServer:
    """``moto_server`` on a free loopback port; ``url`` is its HTTP endpoint."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [require(), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.05)

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10
        ).close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    require()
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def s3_endpoint(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The server's URL, empty, with skylift's credentials for it in the environment."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    yield moto_server.url
    moto_server.reset()
