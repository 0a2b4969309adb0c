"""Samples from the metrics, and webhook deliveries against a real local HTTP server."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from webhooks import webhook_server

from skylift.observe.alerts_service import Sampler, quantile
from skylift.observe.alerts_store import AlertStore
from skylift.observe.metrics import DURATION_BUCKETS, FunctionCounts, Metrics
from skylift.observe.notify import Dispatcher
from skylift.observe.policy import Contact


def test_quantile_interpolates_like_histogram_quantile() -> None:
    bounds = (0.1, 0.2, 0.4)
    # 100 in (0, 0.1], 100 in (0.1, 0.2]: rank 198 of 200 is 98% into the second bucket.
    assert quantile(0.99, bounds, [100, 100, 0, 0]) == pytest.approx(0.1 + 0.1 * 98 / 100)
    assert quantile(0.5, bounds, [10, 0, 0, 0]) == pytest.approx(0.05)
    assert quantile(0.99, bounds, [0, 0, 0, 5]) == 0.4  # in +Inf: the highest finite bound
    assert quantile(0.99, bounds, [0, 0, 0, 0]) is None


def test_the_sampler_turns_totals_into_one_interval() -> None:
    metrics = Metrics({})
    sampler = Sampler(metrics, None)
    counts = metrics.functions["pay"] = FunctionCounts.of(None)
    asyncio.run(sampler.sample(0.0))  # the first round only remembers the totals
    for _ in range(98):
        counts.duration.observe(0.003)
        counts.add("invoke", "success")
    for _ in range(2):
        counts.duration.observe(0.7)
        counts.add("invoke", "error")
    samples = asyncio.run(sampler.sample(15.0))
    assert samples[("function", "pay", "error_rate")] == pytest.approx(0.02)
    # rank 99 of 100 falls in (0.5, 1.0], where the two slow ones are: halfway into it.
    assert samples[("function", "pay", "duration_p99")] == pytest.approx(0.75)
    assert samples[("function", "pay", "throttles")] == 0.0
    idle = asyncio.run(sampler.sample(30.0))
    assert ("function", "pay", "error_rate") not in idle  # no invocations: no sample
    assert ("function", "pay", "duration_p99") not in idle
    assert DURATION_BUCKETS[9] == 0.5 and DURATION_BUCKETS[10] == 1.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deliver(store: AlertStore, contacts: list[Contact], retries: int = 2) -> None:
    async def run() -> None:
        dispatcher = Dispatcher(store, retries=retries, backoff=0.01)
        alert = store.open_alert(
            "function", "pay", "error_rate", "notify",
            {"value": 0.5, "mean": 0.0, "stddev": 0.0, "sigma": 50.0}, 100.0,
        )  # fmt: skip
        dispatcher.send("page", alert, contacts)
        await dispatcher.close(timeout=30)

    asyncio.run(run())


def test_an_unreachable_webhook_is_retried_and_every_attempt_recorded(tmp_path: Path) -> None:
    store = AlertStore(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}/alice"
    deliver(store, [Contact("alice", webhook=url)], retries=2)
    attempts = store.deliveries()
    assert [d.attempt for d in attempts] == [1, 2, 3]
    assert all(d.status is None and d.error and "cannot reach it" in d.error for d in attempts)
    assert {(d.recipient, d.notifier, d.url, d.event) for d in attempts} == {
        ("alice", "webhook", url, "page")
    }


def test_a_refusal_is_not_retried_and_a_success_is_recorded(tmp_path: Path) -> None:
    store = AlertStore(tmp_path)
    with webhook_server() as hooks:
        hooks.failing["/flaky"] = 2  # 503, 503, then 200
        hooks.refusing.add("/gone")  # 404: retrying cannot help
        contacts = [
            Contact("bob", webhook=f"{hooks.url}/flaky"),
            Contact("#ops", slack=f"{hooks.url}/ops"),
            Contact("carol", webhook=f"{hooks.url}/gone"),
        ]
        deliver(store, contacts)
        received = {path: body for path, body in hooks.received}
    by = {(d.recipient, d.attempt): d for d in store.deliveries()}
    assert [by["bob", n].status for n in (1, 2, 3)] == [503, 503, 200]
    assert by["bob", 3].error is None and by["#ops", 1].status == 200
    assert by["carol", 1].status == 404 and ("carol", 2) not in by
    assert received["/flaky"]["recipient"] == "bob" and received["/flaky"]["event"] == "page"
    assert received["/ops"]["text"].startswith("[PAGE] alert 1: function pay error_rate is 0.5")
