"""One `skylift up` of observed_app.py shared by the logs and metrics tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from skylift.testing import serve

HERE = Path(__file__).parent
T = TypeVar("T")


@dataclass
class Served:
    url: str
    app: Path

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)


# The head of the alert policies of tests under a real server: a round every 0.2 s, so
# a test takes seconds; judged from the fifth sample; a page at once, never repeated.
FAST_ALERTS = """\
[alerts]
interval = "0.2s"
window = "30s"
min_samples = 5
for = 0
cooldown = "1h"
"""


@pytest.fixture(scope="session")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    app = tmp_path_factory.mktemp("observed")
    shutil.copy(HERE / "observed_app.py", app / "app.py")
    with serve(str(app), options=["--quiet"]) as url:
        yield Served(url, app)


def skylift(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def eventually(check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """`check()`'s first truthy answer, polling: logs are written off the request path."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        time.sleep(0.05)
