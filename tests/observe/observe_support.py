"""What the observe tests share besides fixtures (conftest.py): a served app, the fast
alert policy's head, the CLI, polling. A module of its own name, not `conftest`, so that
`from observe_support import ...` cannot find another folder's conftest.py when pytest
runs several folders at once."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
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


def follow_delays(served: Served, *args: str) -> tuple[list[float], list[str]]:
    """Run `skylift logs hello -f ARGS`, invoke hello three times once it reads, and
    give how long each invocation's START line took to be printed, and every line it
    printed 0.6 s after the last (a few more polls)."""
    follower = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "logs", "hello", "-f", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen: dict[str, float] = {}
    lines: list[str] = []

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.append(line)
            match = re.search(r"START RequestId: (\S+)", line)
            if match:
                seen[match.group(1)] = time.monotonic()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        first = served.get("/hello").text
        eventually(lambda: first in seen, timeout=15)  # the follower is up and reading
        delays = []
        for _ in range(3):
            sent = time.monotonic()
            request_id = served.get("/hello").text
            eventually(lambda rid=request_id: rid in seen, timeout=10)  # type: ignore[misc]
            delays.append(seen[request_id] - sent)
        time.sleep(0.6)
        return delays, list(lines)
    finally:
        follower.terminate()
        follower.wait(10)
        reader.join(5)
        assert follower.stdout is not None
        follower.stdout.close()
