"""What the observe tests share besides fixtures (conftest.py): a served app, the fast
alert policy's head, the CLI, polling. A module of its own name, not `conftest`, so that
`from observe_support import ...` cannot find another folder's conftest.py when pytest
runs several folders at once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

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
