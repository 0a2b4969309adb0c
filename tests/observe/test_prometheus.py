"""A real Prometheus scrapes a real server (and itself); PromQL finds the numbers.

Prometheus is the Debian package `prometheus`. Without it this test skips, saying so;
under CI=true it fails, since .ci/run installs it.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from conftest import Served, eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def prometheus(observed: Served, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is missing in CI: .ci/run installs the Debian package")
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    port = free_port()
    target = urlparse(observed.url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: skylift\n    static_configs: [{{targets: ['{target}']}}]\n"
        f"  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
        try:
            return httpx.get(url + "/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        eventually(ready, timeout=60)
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
    result = query(url, promql)
    if not result:
        return None
    found = float(result[0]["value"][1])  # type: ignore[index]
    return None if math.isnan(found) else found


def test_prometheus_scrapes_invocations_and_latency(observed: Served, prometheus: str) -> None:
    eventually(lambda: number(prometheus, 'up{job="skylift"}') == 1, timeout=30)
    eventually(lambda: number(prometheus, 'up{job="prometheus"}') == 1, timeout=30)
    start = number(prometheus, 'skylift_invocations_total{function="hello",outcome="success"}')
    # Traffic over a few scrapes, so rate() has two samples with a difference.
    deadline = time.monotonic() + 4
    sent = 0
    while time.monotonic() < deadline:
        observed.get("/hello")
        sent += 1
        time.sleep(0.05)
    expected = (start or 0) + sent
    eventually(
        lambda: (
            (
                number(prometheus, 'skylift_invocations_total{function="hello",outcome="success"}')
                or 0
            )
            >= expected
        ),
        timeout=30,
    )
    p99 = eventually(
        lambda: number(
            prometheus,
            "histogram_quantile(0.99, sum by (le) (rate("
            'skylift_invocation_duration_seconds_bucket{function="hello"}[30s])))',
        ),
        timeout=30,
    )
    assert 0 < p99 < 1  # a print and a return: well under a second
    p50 = number(
        prometheus,
        "histogram_quantile(0.5, sum by (le) (rate("
        'skylift_http_request_duration_seconds_bucket{route="/hello"}[30s])))',
    )
    assert p50 is not None and 0 < p50 < 1
    # Prometheus watches itself too.
    assert (number(prometheus, 'prometheus_tsdb_head_series{job="prometheus"}') or 0) > 0
