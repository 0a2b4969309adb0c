"""`GET /metrics` on a running server: what a Prometheus scrape sees."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest
from observe_support import Served, skylift
from prometheus_client.parser import text_string_to_metric_families

from skylift.testing import serve

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(served: Served, path: str = "/metrics") -> Samples:
    response = httpx.get(served.url + path, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_invocations_are_counted_by_outcome(observed: Served) -> None:
    before = scrape(observed)
    observed.get("/hello")
    observed.get("/hello")
    observed.get("/boom")
    observed.get("/slow")
    with ThreadPoolExecutor(2) as pool:  # reserved concurrency 1: one of two is throttled
        codes = sorted(pool.map(lambda _: observed.get("/single").status_code, range(2)))
    assert codes == [200, 429]
    after = scrape(observed)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    total = "skylift_invocations_total"
    assert delta(total, function="hello", trigger="api", outcome="success") == 2
    assert delta(total, function="boom", trigger="api", outcome="error") == 1
    assert delta(total, function="slow", trigger="api", outcome="timeout") == 1
    assert delta(total, function="single", trigger="", outcome="throttle") == 1
    assert delta("skylift_throttles_total", function="single") == 1
    count = "skylift_invocation_duration_seconds_count"
    assert delta(count, function="hello") == 2
    # The timeout (1 s) lands in the buckets above 1 s only.
    bucket = "skylift_invocation_duration_seconds_bucket"
    assert delta(bucket, function="slow", le="0.5") == 0
    assert delta(bucket, function="slow", le="+Inf") == 1
    # The server opened its port with an instance of each HTTP function warm.
    assert value(after, "skylift_cold_starts_total", function="hello") == 0
    assert value(after, "skylift_init_duration_seconds_count", function="hello") >= 1
    assert value(after, "skylift_instances", function="hello", state="idle") >= 1
    assert value(after, "skylift_concurrency_limit", function="single") == 1
    requests = "skylift_http_requests_total"
    assert delta(requests, route="/hello", method="GET", code="200") == 2
    assert delta(requests, route="/single", method="GET", code="429") == 1
    assert delta("skylift_http_request_duration_seconds_count", route="/boom") == 1
    assert value(after, "process_resident_memory_bytes") > 0


def test_concurrent_executions_count_the_invocations_running_now(observed: Served) -> None:
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(observed.get, "/wait")  # sleeps 0.5 s
        seen = []
        while not running.done():
            seen.append(value(scrape(observed), "skylift_concurrent_executions", function="wait"))
        assert running.result().status_code == 200
    assert 1 in seen, seen
    assert value(scrape(observed), "skylift_concurrent_executions", function="wait") == 0


def test_queue_depth_and_age(observed: Served) -> None:
    sqs = boto3.client(
        "sqs",
        endpoint_url=observed.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    url = sqs.get_queue_url(QueueName="backlog")["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)
    samples = scrape(observed, "/_skylift/metrics")
    assert value(samples, "skylift_queue_messages", queue="backlog", state="visible") == 2
    assert value(samples, "skylift_queue_messages", queue="backlog", state="in_flight") == 1
    assert value(samples, "skylift_queue_messages", queue="backlog", state="delayed") == 1
    assert value(samples, "skylift_queue_oldest_message_age_seconds", queue="backlog") >= 0
    assert ("skylift_async_events", frozenset({("function", "hello"), ("state", "queued")})) in (
        samples
    )


def test_openmetrics_when_asked_and_get_only(observed: Served) -> None:
    response = httpx.get(
        observed.url + "/metrics", headers={"Accept": "application/openmetrics-text"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert httpx.post(observed.url + "/metrics").status_code == 405


def test_promtool_accepts_the_scrape(observed: Served) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: .ci/run installs the prometheus package")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    observed.get("/hello")
    text = httpx.get(observed.url + "/metrics").text
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_apps_own_metrics_route_keeps_its_path(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            from skylift import App

            app = App("own-metrics")


            @app.http("/metrics", methods=["GET"])
            def metrics(event, context):
                return {"statusCode": 200, "body": "the app's own"}
            """
        )
    )
    with serve(str(tmp_path), options=["--quiet"]) as url:
        assert httpx.get(url + "/metrics").text == "the app's own"
        assert "skylift_invocations_total" in httpx.get(url + "/_skylift/metrics").text
    # The server has stopped (its pending logs written): `skylift logs` reads the folder.
    done = skylift("logs", "metrics", str(tmp_path))
    assert done.returncode == 0 and "REPORT RequestId:" in done.stdout


def test_durations_counted_in_a_batch_fill_the_buckets_one_at_a_time_would() -> None:
    """The batch path (sorted once, bisected per bucket) against one observation at a
    time, bounds themselves included (a value equal to a bound is in its bucket, `le`),
    and durations in milliseconds scaled to seconds."""
    from skylift.observe.histogram import Histogram
    from skylift.observe.metrics import DURATION_BUCKETS

    seconds = [0.0, 1e-6, 0.0031, 0.7, 42.0, 10_000.0, *DURATION_BUCKETS, *DURATION_BUCKETS[:3]]
    one_by_one = Histogram(DURATION_BUCKETS)
    for value in seconds:
        one_by_one.observe(value)
    batch = Histogram(DURATION_BUCKETS)
    batch.observe_many(list(reversed(seconds)))
    scaled = Histogram(DURATION_BUCKETS)
    scaled.observe_many([value * 1000 for value in seconds], 1000)
    assert batch.counts == one_by_one.counts == scaled.counts
    assert batch.total == pytest.approx(one_by_one.total)
    assert scaled.total == pytest.approx(one_by_one.total)
