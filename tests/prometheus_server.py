"""A real Prometheus (the Debian package `prometheus`) on a free loopback port, scraping
what the test's configuration says, and PromQL answers from its HTTP API.

Without the binary a test skips, saying so; under CI=true it fails, since .ci/run
installs the package.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_prometheus(scrape_configs: str, folder: Path) -> Iterator[str]:
    """Prometheus scraping every second with `scrape_configs` (YAML list items, indented
    two spaces), plus itself as job `prometheus`; its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is missing in CI: .ci/run installs the Debian package")
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"{scrape_configs}"
        f"  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    log_path = folder / "prometheus.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            return httpx.get(url + "/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, 60, "Prometheus to be ready")
        yield url
    finally:
        proc.terminate()  # by its pid, ours alone
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def query(url: str, promql: str) -> list[dict[str, object]]:
    response = httpx.get(url + "/api/v1/query", params={"query": promql}, timeout=10)
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def number(url: str, promql: str) -> float | None:
    """The query's single value, or None when it has none (or NaN)."""
    result = query(url, promql)
    if not result:
        return None
    found = float(result[0]["value"][1])  # type: ignore[index]
    return None if math.isnan(found) else found


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.1)


def settles_at(url: str, promql: str, expected: float, timeout: float = 30.0) -> None:
    """Wait until `promql` answers `expected`; fail showing the last answer."""
    last: list[float | None] = [None]

    def check() -> bool:
        last[0] = number(url, promql)
        return last[0] == expected

    try:
        wait_for(check, timeout, f"{promql} == {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it last answered {last[0]}") from None
