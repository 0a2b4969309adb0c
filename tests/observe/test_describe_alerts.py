"""An alert on a function is one of its events in `skylift describe`, under `skylift up`."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
from observe_support import FAST_ALERTS, eventually, skylift
from webhooks import webhook_server

from skylift.testing import serve

HERE = Path(__file__).parent


def policy(url: str) -> str:
    return (
        FAST_ALERTS
        + f"""\
metrics = ["error_rate"]

[alerts.primary]
name = "alice"
webhook = "{url}/alice"

[alerts.backup]
name = "bob"
webhook = "{url}/bob"
"""
    )


def alert_rows(app: Path) -> list[list[str]]:
    done = skylift("describe", "pay", str(app))
    assert done.returncode == 0, done.stderr
    return [line.split(None, 2) for line in done.stdout.splitlines() if "Alert" in line]


def test_a_page_and_its_resolution_are_events_of_the_function(tmp_path: Path) -> None:
    shutil.copy(HERE / "alerting_app.py", tmp_path / "app.py")
    with webhook_server() as hooks:
        (tmp_path / "skylift.toml").write_text(policy(hooks.url))
        with serve(str(tmp_path), options=["--quiet"]) as url:
            fail = threading.Event()
            stop = threading.Event()

            def traffic() -> None:
                with httpx.Client(timeout=30) as client:
                    while not stop.is_set():
                        client.post(
                            f"{url}/2015-03-31/functions/pay/invocations",
                            json={"fail": fail.is_set()},
                        )
                        time.sleep(0.01)

            sender = threading.Thread(target=traffic, daemon=True)
            sender.start()
            try:

                def ready() -> bool:
                    found = httpx.get(f"{url}/_skylift/alerts", timeout=30).json()["series"]
                    return any(s["subject"] == "pay" and s["samples"] >= 5 for s in found)

                eventually(ready, 60)
                fail.set()
                page = eventually(lambda: hooks.to("/alice"), 30)[0]
                alert_id = page["alert"]["id"]
                firing = eventually(lambda: alert_rows(tmp_path))
                assert firing[0][:2] == ["Warning", "AlertFiring"]
                assert f"alert {alert_id}: error_rate" in firing[0][2]
                assert "(paged)" in firing[0][2]
                # Healthy again: the alert resolves by itself, and that is an event too.
                fail.clear()
                resolved = eventually(
                    lambda: [r for r in alert_rows(tmp_path) if r[1] == "AlertResolved"], 30
                )
            finally:
                stop.set()
                sender.join()
            assert resolved[0][0] == "Normal"
            assert f"alert {alert_id}: error_rate" in resolved[0][2]
            assert "resolved by skylift: back within the threshold" in resolved[0][2]
