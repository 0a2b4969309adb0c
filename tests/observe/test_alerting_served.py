"""Alerting under a real `skylift up`: pages reach real webhooks, escalate, stop on ack.

The policy uses 0.2 s intervals, so the test takes seconds; every wait polls for what a
user would see (a webhook arriving, `skylift alerts` output) with a generous deadline.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from observe_support import FAST_ALERTS, eventually, skylift
from webhooks import Hooks, webhook_server

from skylift.client import Client
from skylift.testing import ServerLog, serve

HERE = Path(__file__).parent
ESCALATE_AFTER = 6.0


def policy(hooks: Hooks) -> str:
    return (
        FAST_ALERTS
        + f"""\
escalate_after = "{ESCALATE_AFTER}s"
metrics = ["error_rate", "queue_age"]
retries = 3
retry_backoff = "0.05s"

[alerts.primary]
name = "alice"
webhook = "{hooks.url}/alice"

[alerts.backup]
name = "bob"
webhook = "{hooks.url}/bob"

[[alerts.channels]]
name = "#ops"
slack = "{hooks.url}/ops"

[[alerts.actions]]
function = "pay"
metric = "error_rate"
at = "page"
scale = {{ min = 1 }}
"""
    )


class Traffic:
    """Invokes functions continuously; `fail` switches what the events ask for."""

    def __init__(self, url: str, functions: list[str]) -> None:
        self.url, self.functions = url, functions
        self.fail = False
        self.stop = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                for name in self.functions:
                    client.post(
                        f"{self.url}/2015-03-31/functions/{name}/invocations",
                        json={"fail": self.fail},
                    )
                    self.count += 1
                time.sleep(0.01)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Hooks, ServerLog]]:
    with webhook_server() as hooks:
        app = tmp_path / "app"
        app.mkdir()
        shutil.copy(HERE / "alerting_app.py", app / "app.py")
        (app / "skylift.toml").write_text(policy(hooks))
        log = ServerLog()
        with serve(str(app), options=["--quiet"], log=log) as url:
            yield url, app, hooks, log


def baselines_ready(url: str, series: set[tuple[str, str]], samples: int = 5) -> None:
    """Wait until each (subject, metric) has min_samples in its window: on a loaded
    machine rounds may come late, and a test must not start its trouble before."""

    def ready() -> bool:
        found = httpx.get(f"{url}/_skylift/alerts", timeout=30).json()["series"]
        counts = {(s["subject"], s["metric"]): s["samples"] for s in found}
        return all(counts.get(key, 0) >= samples for key in series)

    eventually(ready, 60)


def alerts(app: Path) -> list[dict[str, object]]:
    done = skylift("alerts", "--app", str(app), "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_three_sigma_pages_escalates_and_an_ack_stops_the_escalation(
    served: tuple[str, Path, Hooks, ServerLog],
) -> None:
    url, app, hooks, log = served
    hooks.failing["/ops"] = 1  # the channel's first delivery fails: it is retried
    traffic = Traffic(url, ["pay", "charge"])
    traffic.thread.start()
    try:
        # A healthy baseline: no errors for at least min_samples rounds.
        baselines_ready(url, {("pay", "error_rate"), ("charge", "error_rate")})
        assert hooks.received == []
        traffic.fail = True
        pages = eventually(lambda: len(hooks.to("/alice")) >= 2 and hooks.to("/alice"), 30)
    finally:
        traffic.stop.set()
        traffic.thread.join()
    by_function = {page["alert"]["subject"]: page for page in pages}
    assert set(by_function) == {"pay", "charge"}
    page = by_function["charge"]
    assert page["event"] == "page" and page["recipient"] == "alice"
    assert page["alert"]["metric"] == "error_rate" and page["alert"]["value"] >= 0.03
    assert page["alert"]["sigma"] >= 3
    # Alice acks charge's page at once, with the CLI, and leaves pay's alone.
    acked = skylift("alerts", "ack", str(page["alert"]["id"]), str(app), "--by", "alice")
    assert acked.returncode == 0, acked.stderr
    assert acked.stdout.strip() == f"alert {page['alert']['id']} acknowledged by alice"
    # pay's page was not acked: Bob gets it after escalate_after.
    escalations = eventually(lambda: hooks.to("/bob"), 30)
    assert [e["event"] for e in escalations] == ["escalate"]
    assert escalations[0]["alert"]["subject"] == "pay"
    assert escalations[0]["alert"]["escalated_to"] == "bob"
    # charge's acked page never escalates: wait past its escalation time and a few rounds.
    paged_at = page["alert"]["paged_at"]
    time.sleep(max(0.0, paged_at + ESCALATE_AFTER + 1.0 - time.time()))
    assert [e["alert"]["subject"] for e in hooks.to("/bob")] == ["pay"]
    # The channel heard of both pages in Slack's shape, after a failed first attempt.
    slack = eventually(lambda: len(hooks.to("/ops")) >= 3 and hooks.to("/ops"), 10)
    assert all(set(message) == {"text", "username"} for message in slack)
    assert any("[PAGE] alert" in m["text"] and "charge error_rate" in m["text"] for m in slack)
    acked_line = f"[ACKED] alert {page['alert']['id']}: function charge error_rate, by alice"
    eventually(lambda: any(m["text"].startswith(acked_line) for m in hooks.to("/ops")), 10)
    # `skylift alerts` shows both, with who was paged and each delivery.
    found = {a["subject"]: a for a in alerts(app)}
    assert (found["charge"]["state"], found["charge"]["acked_by"]) == ("acked", "alice")
    assert found["charge"]["escalated_to"] is None
    assert (found["pay"]["state"], found["pay"]["paged"], found["pay"]["escalated_to"]) == (
        "open",
        "alice",
        "bob",
    )
    deliveries = [d for a in found.values() for d in a["deliveries"]]  # type: ignore[attr-defined]
    to_ops = [d for d in deliveries if d["recipient"] == "#ops"]
    # The channel's first delivery failed; which alert's it was depends on which page fired
    # first (both fire in the same round), so look for it among both alerts' deliveries.
    assert any(d["status"] == 503 and d["attempt"] == 1 for d in to_ops), to_ops
    assert any(d["attempt"] == 2 and d["status"] == 200 and d["error"] is None for d in to_ops)
    table = skylift("alerts", "--app", str(app)).stdout
    assert "function pay" in table and "function charge" in table and "acked" in table
    # The server's log says it too.
    assert "[PAGE] alert" in log.text and "-> alice, #ops" in log.text


def test_resolve_from_the_cli(served: tuple[str, Path, Hooks, ServerLog]) -> None:
    url, app, hooks, _ = served
    traffic = Traffic(url, ["pay"])
    traffic.thread.start()
    try:
        baselines_ready(url, {("pay", "error_rate")})
        traffic.fail = True
        page = eventually(lambda: hooks.to("/alice"), 30)[0]
    finally:
        traffic.stop.set()
        traffic.thread.join()
    alert_id = str(page["alert"]["id"])
    # The policy's action: pay keeps a warm instance from the page on; undo restores it.
    status = httpx.get(f"{url}/_skylift/status", timeout=30).json()
    assert status["functions"]["pay"]["min"] == 1
    (action,) = alerts(app)[0]["actions"]  # type: ignore[misc]
    assert (action["before"]["min"], action["after"]["min"]) == (0, 1)
    undone = skylift("alerts", "undo", alert_id, str(app))
    assert undone.returncode == 0, undone.stderr
    assert (
        undone.stdout.strip()
        == f"alert {alert_id}: pay back to min 0, max 1000 (from min 1, max 1000)"
    )
    status = httpx.get(f"{url}/_skylift/status", timeout=30).json()
    assert status["functions"]["pay"]["min"] == 0
    again = skylift("alerts", "undo", alert_id, str(app))
    assert again.stdout.strip() == f"alert {alert_id} has no action left to undo"
    done = skylift("alerts", "resolve", alert_id, str(app), "--by", "carol")
    assert done.returncode == 0 and "resolved by carol" in done.stdout
    again = skylift("alerts", "ack", alert_id, str(app))
    assert again.returncode == 2 and "was resolved already" in again.stderr
    missing = skylift("alerts", "ack", "999", str(app))
    assert missing.returncode == 2 and "there is no alert 999" in missing.stderr
    assert [a["state"] for a in alerts(app)] == ["resolved"]


def test_a_bad_policy_stops_skylift_up_with_the_line(tmp_path: Path) -> None:
    shutil.copy(HERE / "alerting_app.py", tmp_path / "app.py")
    (tmp_path / "skylift.toml").write_text('[alerts]\ninterval = "15s"\npage_at = "three"\n')
    done = skylift("up", str(tmp_path), "--port", "0", timeout=60)
    assert done.returncode == 2
    assert f"{tmp_path / 'skylift.toml'} line 3: [alerts] page_at must be a number" in done.stderr


def test_a_queue_that_stops_draining_pages_and_the_control_api_acks(
    served: tuple[str, Path, Hooks, ServerLog],
) -> None:
    url, app, hooks, _ = served
    # An empty queue, age 0, for 5 s. (A steady ramp judged against a window of little
    # else but itself is never beyond 2 sigma: the baseline must be longer than that.)
    baselines_ready(url, {("backlog", "queue_age")}, samples=25)
    client = Client(url)
    queue_url = client.sqs("GetQueueUrl", {"QueueName": "backlog"})["QueueUrl"]
    client.sqs("SendMessage", {"QueueUrl": queue_url, "MessageBody": "stuck"})
    # 0 s with a floor of 1 s: at 3 s old, the message pages.
    page = eventually(lambda: hooks.to("/alice"), 30)[0]
    assert (page["alert"]["kind"], page["alert"]["subject"]) == ("queue", "backlog")
    assert page["alert"]["metric"] == "queue_age" and page["alert"]["value"] >= 3
    alert_id = page["alert"]["id"]
    listed = httpx.get(f"{url}/_skylift/alerts", timeout=30)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["alerts"]] == [alert_id]
    assert listed.json()["alerts"][0]["deliveries"][0]["recipient"] in ("alice", "#ops")
    acked = httpx.post(f"{url}/_skylift/alerts/{alert_id}/ack", json={"by": "alice"}, timeout=30)
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acked_by"]) == ("acked", "alice")
    again = httpx.post(f"{url}/_skylift/alerts/{alert_id}/ack", timeout=30)
    assert again.status_code == 409 and "acked already" in again.json()["message"]
    missing = httpx.post(f"{url}/_skylift/alerts/999/resolve", timeout=30)
    assert missing.status_code == 404
    bad = httpx.post(f"{url}/_skylift/alerts/{alert_id}/resolve", content=b"[1]", timeout=30)
    assert bad.status_code == 400
    resolved = httpx.post(f"{url}/_skylift/alerts/{alert_id}/resolve", timeout=30)
    assert resolved.json()["state"] == "resolved"
    # The rest of the control API is untouched.
    assert httpx.get(f"{url}/_skylift/status", timeout=30).status_code == 200
    # The CLI reads the same alerts.
    assert [a["state"] for a in alerts(app)] == ["resolved"]


def test_an_action_for_an_unknown_function_stops_skylift_up(tmp_path: Path) -> None:
    shutil.copy(HERE / "alerting_app.py", tmp_path / "app.py")
    (tmp_path / "skylift.toml").write_text(
        '[alerts]\n[[alerts.actions]]\nfunction = "refund"\nscale = { min = 1 }\n'
    )
    done = skylift("up", str(tmp_path), "--port", "0", timeout=60)
    assert done.returncode == 2
    assert "[[alerts.actions]] names function 'refund', which the app does not declare" in (
        done.stderr
    )
    assert "(functions: charge, pay)" in done.stderr
