"""The other two function metrics under a real `skylift up`: a jump in duration p99 and
throttles starting page the primary, as a jump in errors does
(test_alerting_served.py); each page names its metric."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from observe_support import FAST_ALERTS, eventually
from test_alerting_served import Traffic, baselines_ready
from webhooks import Hooks, webhook_server

from skylift.testing import serve

APP = """
    import time
    from skylift import App

    app = App("latency")


    @app.function()
    def lag(event, context):
        time.sleep(0.15 if event.get("fail") else 0)  # "fail": become slow
        return {"ok": True}


    @app.function(max_concurrency=1)
    def narrow(event, context):
        time.sleep(0.8)  # past the 0.5 s a second caller waits for the slot
        return {"ok": True}
"""

POLICY = (
    FAST_ALERTS
    + """\
metrics = ["duration_p99", "throttles"]

[alerts.primary]
name = "alice"
webhook = "{url}/alice"
"""
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Hooks]]:
    with webhook_server() as hooks:
        (tmp_path / "app.py").write_text(textwrap.dedent(APP))
        (tmp_path / "skylift.toml").write_text(POLICY.format(url=hooks.url))
        with serve(str(tmp_path), options=["--quiet"]) as url:
            yield url, hooks


def pages(hooks: Hooks, metric: str) -> list[dict[str, Any]]:
    return [p["alert"] for p in hooks.to("/alice") if p["alert"]["metric"] == metric]


def test_a_jump_in_duration_p99_pages(served: tuple[str, Hooks]) -> None:
    url, hooks = served
    traffic = Traffic(url, ["lag"])
    traffic.thread.start()
    try:
        baselines_ready(url, {("lag", "duration_p99")})
        assert hooks.to("/alice") == []
        traffic.fail = True  # every invocation now takes 150 ms
        found = eventually(lambda: pages(hooks, "duration_p99"), 30)
    finally:
        traffic.stop.set()
        traffic.thread.join()
    assert found[0]["subject"] == "lag"
    assert float(found[0]["value"]) >= 0.1  # seconds
    assert float(found[0]["sigma"]) >= 3


def test_throttles_starting_page(served: tuple[str, Hooks]) -> None:
    url, hooks = served
    one = Traffic(url, ["narrow"])  # one caller at a time: reserved concurrency 1 is enough
    one.thread.start()
    two = Traffic(url, ["narrow"])
    try:
        baselines_ready(url, {("narrow", "throttles")})
        assert hooks.to("/alice") == []
        two.thread.start()  # a second caller: it waits 0.5 s for the one slot, then 429
        found = eventually(lambda: pages(hooks, "throttles"), 30)
    finally:
        one.stop.set()
        two.stop.set()
        one.thread.join()
        if two.thread.is_alive():
            two.thread.join()
    assert found[0]["subject"] == "narrow"
    assert float(found[0]["value"]) > 0  # throttles a second
