"""A real Prometheus scrapes a real server (and itself); PromQL finds the numbers.

Prometheus is the Debian package `prometheus`. Without it this test skips, saying so;
under CI=true it fails, since .ci/run installs it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from observe_support import Served, eventually

from prometheus_server import number, running_prometheus


@pytest.fixture
def prometheus(observed: Served, tmp_path: Path) -> Iterator[str]:
    target = urlparse(observed.url).netloc
    jobs = f"  - job_name: skylift\n    static_configs: [{{targets: ['{target}']}}]\n"
    with running_prometheus(jobs, tmp_path) as url:
        yield url


def test_prometheus_scrapes_invocations_and_latency(observed: Served, prometheus: str) -> None:
    eventually(lambda: number(prometheus, 'up{job="skylift"}') == 1, timeout=30)
    eventually(lambda: number(prometheus, 'up{job="prometheus"}') == 1, timeout=30)
    start = number(
        prometheus, 'skylift_invocations_total{function="hello",trigger="api",outcome="success"}'
    )
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
                number(
                    prometheus,
                    'skylift_invocations_total{function="hello",trigger="api",outcome="success"}',
                )
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
