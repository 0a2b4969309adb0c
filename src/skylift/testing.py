"""Helpers for testing skylift apps through a real server: `serve` runs `skylift up` as a
process; `Client` (skylift.testclient) serves the app in-process, for pytest.

from skylift.testing import serve

def test_change():
    with serve("examples/make-change") as url:
        assert httpx.post(url + "/change", json={"amount": "1.89"}).status_code == 200
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

_READY = re.compile(r"serving on (http://\S+)")


class ServerLog:
    """What a served app wrote to stderr so far (skylift's messages and init output)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.lines)


@contextmanager
def serve(
    app: str | None = None,
    *,
    template: str | None = None,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
    log: ServerLog | None = None,
    options: Sequence[str] = (),
) -> Iterator[str]:
    """Run `skylift up` for `app` on a free port; yield its base URL; stop it after.

    `options` are more `skylift up` options, e.g. `["--fast-retries", "--quiet"]`.
    """
    args = [sys.executable, "-m", "skylift.cli", "up", "--host", host, "--port", "0", *options]
    if app is not None:
        args.append(app)
    if template is not None:
        args += ["--template", template]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    log = log if log is not None else ServerLog()
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.lines.append(line)
            match = _READY.search(line)
            if match and not url:
                url.append(match.group(1))
                found.set()
        found.set()

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.05):
        if time.monotonic() > deadline:
            break
    try:
        if not url:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            raise RuntimeError(f"skylift up did not start (exit {proc.returncode}):\n{log.text}")
        yield url[0]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        pumper.join(5)
        if proc.stderr is not None:
            proc.stderr.close()


def __getattr__(name: str) -> object:
    # The test client loads the whole platform: imported only when a test asks for it.
    if name in ("Client", "Invocation", "Events"):
        from skylift import testclient

        return getattr(testclient, name)
    raise AttributeError(f"module 'skylift.testing' has no attribute {name!r}")
