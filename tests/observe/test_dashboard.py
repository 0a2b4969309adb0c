"""The dashboard in a real browser: headless Chromium (the Debian package `chromium`,
driven by playwright) against a real `skylift up` under traffic.

It checks that the numbers the page shows are the ones `/metrics` gives, acks an alert
with the page's button, filters the logs, and saves a screenshot. Without Chromium it
skips, saying so; under CI=true it fails (.ci/run installs it). Set
SKYLIFT_DASHBOARD_SCREENSHOT=docs/dashboard.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from observe_support import FAST_ALERTS, eventually
from prometheus_client.parser import text_string_to_metric_families
from webhooks import Hooks, webhook_server

from skylift.client import Client
from skylift.testing import serve

HERE = Path(__file__).parent
# Debian's chromium; .ci/run names playwright's own build where the system has none.
CHROMIUM = os.environ.get("SKYLIFT_CHROMIUM") or "/usr/bin/chromium"
POLICY = (
    FAST_ALERTS
    + """\
metrics = ["error_rate"]

[alerts.primary]
name = "alice"
webhook = "{hooks}/alice"
"""
)


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not os.path.exists(CHROMIUM):
        missing = "playwright" if sync_playwright is None else CHROMIUM
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is missing in CI: .ci/run installs chromium, [test] playwright")
        pytest.skip(f"{missing} is missing (Debian package chromium, pip package playwright)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


class Traffic:
    """Threads invoking functions until stopped; `fail` makes pay's events fail."""

    def __init__(self, url: str, callers: dict[str, int]) -> None:
        self.url = url
        self.fail = False
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.run, args=(name,), daemon=True)
            for name, count in callers.items()
            for _ in range(count)
        ]

    def run(self, name: str) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                client.post(
                    f"{self.url}/2015-03-31/functions/{name}/invocations",
                    json={"fail": self.fail, "amount": 5},
                )
                time.sleep(0.01)

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (le, count) buckets, +Inf last."""
    total = buckets[-1][1]
    if total == 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def scraped(url: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
    """What /metrics says of each function and queue, as the page should show it."""
    text = httpx.get(url + "/metrics", timeout=30).text
    functions: dict[str, dict[str, Any]] = {}
    queues: dict[str, dict[str, float]] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}

    def of(name: str) -> dict[str, Any]:
        return functions.setdefault(
            name, {"invocations": 0, "errors": 0, "throttles": 0, "cold_starts": 0}
        )

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "skylift_invocations_total" and labels["outcome"] != "throttle":
                of(labels["function"])["invocations"] += value
                if labels["outcome"] in ("error", "timeout"):
                    of(labels["function"])["errors"] += value
            elif sample.name == "skylift_throttles_total":
                of(labels["function"])["throttles"] = value
            elif sample.name == "skylift_cold_starts_total":
                of(labels["function"])["cold_starts"] = value
            elif sample.name == "skylift_instances" and labels["state"] in ("busy", "idle"):
                of(labels["function"])[labels["state"]] = value
            elif sample.name == "skylift_invocation_duration_seconds_bucket":
                buckets.setdefault(labels["function"], []).append((float(labels["le"]), value))
            elif sample.name == "skylift_queue_messages":
                queues.setdefault(labels["queue"], {})[labels["state"]] = value
            elif sample.name == "skylift_queue_oldest_message_age_seconds":
                queues.setdefault(labels["queue"], {})["oldest_age"] = value
    for name, found in buckets.items():
        for q in (0.5, 0.99):
            quantile = histogram_quantile(q, sorted(found))
            of(name)[f"p{round(q * 100)}"] = None if quantile is None else quantile * 1000
    return functions, queues


def shown(page: Any, table: str, key: str) -> dict[str, dict[str, str]]:
    """The page's table as {row key: {field: text}}."""
    rows: dict[str, dict[str, str]] = page.eval_on_selector_all(
        f"#{table} tbody tr",
        f"""rows => Object.fromEntries(rows.map(r => [r.dataset.{key},
            Object.fromEntries(Array.from(r.querySelectorAll('[data-field]'),
                td => [td.dataset.field, td.textContent]))]))""",
    )
    return rows


def mismatches(page: Any, url: str) -> list[str]:
    """How the page differs from /metrics now (empty when they agree)."""
    functions, queues = scraped(url)
    page_functions = shown(page, "functions", "function")
    page_queues = shown(page, "queues", "queue")
    wrong = []
    for name, expected in functions.items():
        row = page_functions.get(name)
        if row is None:
            wrong.append(f"no row for {name}")
            continue
        for field in ("invocations", "errors", "throttles", "cold_starts", "busy", "idle"):
            if float(row[field]) != expected[field]:
                wrong.append(f"{name} {field}: page {row[field]}, /metrics {expected[field]}")
        for field in ("p50", "p99"):
            if expected[field] is None or abs(float(row[field]) - expected[field]) > 0.006:
                wrong.append(f"{name} {field}: page {row[field]}, /metrics {expected[field]}")
    for name, expected in queues.items():
        row = page_queues[name]
        for field in ("visible", "in_flight", "delayed"):
            if float(row[field]) != expected[field]:
                wrong.append(f"{name} {field}: page {row[field]}, /metrics {expected[field]}")
        # An age grows between the page's update and the scrape: up to one update apart.
        if abs(float(row["oldest_age"]) - expected["oldest_age"]) > 1.6:
            wrong.append(f"{name} age: page {row['oldest_age']}, /metrics {expected['oldest_age']}")
    return wrong


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Hooks]]:
    with webhook_server() as hooks:
        app = tmp_path / "app"
        app.mkdir()
        shutil.copy(HERE / "dashboard_app.py", app / "app.py")
        (app / "skylift.toml").write_text(POLICY.format(hooks=hooks.url))
        with serve(str(app), options=["--quiet"]) as url:
            yield url, hooks


def test_the_page_shows_what_metrics_says_acks_an_alert_and_filters_logs(
    browser: Any, served: tuple[str, Hooks], tmp_path: Path
) -> None:
    url, hooks = served
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url + "/_skylift/")
    page.wait_for_selector("#status.live")
    client = Client(url)
    queue_url = client.sqs("GetQueueUrl", {"QueueName": "backlog"})["QueueUrl"]
    client.sqs("SendMessage", {"QueueUrl": queue_url, "MessageBody": "stuck"})

    with Traffic(url, {"pay": 1, "flaky": 1, "single": 3}) as traffic:
        # Live: rates rise without a reload.
        page.wait_for_function(
            """() => parseFloat(document.querySelector(
                 '#functions tr[data-function="pay"] td[data-field="rps"]')?.textContent) > 0""",
            timeout=30_000,
        )
        time.sleep(1.0)  # some throttles of single, some failures of flaky
    # Traffic stopped: the page settles on what /metrics says.
    last: list[list[str]] = []

    def agree() -> bool:
        last.append(mismatches(page, url))
        return not last[-1]

    try:
        eventually(agree, 30)
    except AssertionError:
        raise AssertionError(f"the page never agreed with /metrics: {last[-1]}") from None
    functions, _ = scraped(url)
    assert functions["single"]["throttles"] > 0 and functions["flaky"]["errors"] > 0
    assert shown(page, "queues", "queue")["backlog"]["visible"] == "1"

    # pay's error rate jumps after a healthy baseline: an alert opens, and shows up.
    with Traffic(url, {"pay": 1}) as traffic:

        def baseline() -> bool:
            series = httpx.get(f"{url}/_skylift/alerts", timeout=30).json()["series"]
            return any(s["subject"] == "pay" and s["samples"] >= 5 for s in series)

        eventually(baseline, 60)
        traffic.fail = True
        # (flaky's steady 50% might page too, by chance: look for pay's page.)
        alert = eventually(
            lambda: [p["alert"] for p in hooks.to("/alice") if p["alert"]["subject"] == "pay"],
            30,
        )[0]
    assert alert["metric"] == "error_rate"
    row = f'#alerts tr[data-alert="{alert["id"]}"]'
    page.wait_for_selector(f"{row} button[data-ack]", timeout=10_000)
    assert "function pay" in page.inner_text(row) and "error_rate" in page.inner_text(row)
    page.click(f"{row} button[data-ack]")
    page.wait_for_selector(f'{row} td[data-field="state"]:has-text("acked by the dashboard")')
    stored = httpx.get(f"{url}/_skylift/alerts", timeout=30).json()["alerts"]
    acked = next(a for a in stored if a["id"] == alert["id"])
    assert (acked["state"], acked["acked_by"]) == ("acked", "the dashboard")
    time.sleep(1.5)  # the next updates keep it acked, without the button
    assert page.query_selector(f"{row} button[data-ack]") is None

    # Logs: the filter takes CloudWatch's syntax, and a bad pattern says what is wrong.
    page.wait_for_selector("#logs .line")
    page.fill("#log-filter", '"card declined"')
    page.click("#log-form button")
    page.wait_for_selector("#logs .line")
    lines = page.eval_on_selector_all("#logs .message", "els => els.map(e => e.textContent)")
    assert lines and all("card declined" in line for line in lines)
    page.fill("#log-filter", '"unclosed')
    page.click("#log-form button")
    page.wait_for_selector("#log-error:not([hidden])")
    assert "unclosed quote" in page.inner_text("#log-error")
    page.fill("#log-filter", "paying -declined")
    page.click("#log-form button")
    page.wait_for_selector("#status.live")
    page.wait_for_selector("#logs .line")
    assert page.is_hidden("#log-error")

    # Nothing came from anywhere but this server.
    assert requested and all(r.startswith(url + "/") for r in requested), requested
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wanted = os.environ.get("SKYLIFT_DASHBOARD_SCREENSHOT")
    if wanted:
        shutil.copy(shot, wanted)


def test_a_guarded_server_s_page_takes_the_token_from_its_address(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "dashboard-browser-token-0123456789"
    monkeypatch.setenv("SKYLIFT_TOKEN", token)
    shutil.copy(HERE / "dashboard_app.py", tmp_path / "app.py")
    with serve(str(tmp_path), options=["--quiet"]) as url:
        context = browser.new_context()
        try:
            # Without the token the page loads, but shows no data and says what to do.
            page = context.new_page()
            page.goto(url + "/_skylift/")
            page.wait_for_selector("#status.failed")
            assert "/_skylift/#token=TOKEN" in page.inner_text("#error")
            assert page.query_selector("#functions tbody tr") is None
            # With it in the fragment (which never leaves the browser): live, and the
            # address bar no longer shows it; a reload keeps it for this tab.
            page = context.new_page()
            page.goto(f"{url}/_skylift/#token={token}")
            page.wait_for_selector('#functions tr[data-function="pay"]')
            assert token not in page.url
            page.reload()
            page.wait_for_selector("#status.live")
            page.wait_for_selector('#functions tr[data-function="pay"]')
        finally:
            context.close()


REPLAYED_APP = """
from skylift import App

app = App()


@app.http("/add", methods=["POST"])
def add(event, context):
    numbers = __import__("json").loads(event["body"])
    {fix}
    return {{"sum": sum(numbers)}}
"""


def test_a_failed_invocation_is_replayed_from_the_page_against_the_fixed_code(
    browser: Any, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(REPLAYED_APP.format(fix='raise ValueError("not yet")'))
    with serve(str(app), options=["--quiet"]) as url:
        page = browser.new_page()
        page.goto(url + "/_skylift/")
        page.wait_for_selector("#status.live")
        assert httpx.post(f"{url}/add", content=b"[1, 2]", timeout=30).status_code >= 500
        button = "#logs button[data-replay]"
        page.wait_for_selector(button, timeout=30_000)
        # Fixed in the editor: the reload serves the new code.
        (app / "app.py").write_text(REPLAYED_APP.format(fix="pass"))
        eventually(
            lambda: httpx.post(f"{url}/add", content=b"[2, 2]", timeout=30).status_code == 200,
            30,
        )
        page.click(button)
        page.wait_for_selector("#logs .replayed:has-text('now success')", timeout=30_000)
        shown = page.inner_text("#logs .replayed")
        assert "was error, now success" in shown and '"sum":3' in shown.replace(" ", "")
