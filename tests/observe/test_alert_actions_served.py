"""The `rollback` and `drain` actions under a real `skylift up`: a bad reload rolled back
by its own error rate, a failing queue worker's mapping paused; each undone with
`skylift alerts undo ID`.

The policies sample every 0.2 s, so each test takes seconds; every wait polls for what
a user would see (a page arriving, an answer, the mapping's State) with a deadline.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from observe_support import FAST_ALERTS, eventually, skylift
from prometheus_client.parser import text_string_to_metric_families
from webhooks import webhook_server

from skylift.client import Client
from skylift.testing import ServerLog, serve

HERE = Path(__file__).parent
POLICY = (
    FAST_ALERTS
    + """\
metrics = ["error_rate"]

[alerts.primary]
name = "alice"
webhook = "{url}/alice"

[[alerts.actions]]
function = "{function}"
{action}
"""
)
PAY = """
from skylift import App

app = App("rollback")

@app.function()
def pay(event, context):
    {body}
"""


def write_pay(app: Path, body: str) -> None:
    (app / "app.py").write_text(textwrap.dedent(PAY).replace("{body}", body))


def series_ready(url: str, subject: str, samples: int = 5) -> None:
    def ready() -> bool:
        found = httpx.get(f"{url}/_skylift/alerts", timeout=30).json()["series"]
        return any(s["subject"] == subject and s["samples"] >= samples for s in found)

    eventually(ready, 60)


def actions_of(app: Path, alert_id: int) -> list[dict[str, object]]:
    done = skylift("alerts", "--app", str(app), "--json")
    assert done.returncode == 0, done.stderr
    (alert,) = [a for a in json.loads(done.stdout) if a["id"] == alert_id]
    return list(alert["actions"])


class Loop:
    """Runs `step` every few milliseconds in a thread until stopped."""

    def __init__(self, step: Callable[[], object]) -> None:
        self.step = step
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.step()
            time.sleep(0.01)

    def __enter__(self) -> Loop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_a_reload_whose_errors_page_is_rolled_back_and_undo_brings_it_back(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    write_pay(app, 'return {"v": 1}')
    log = ServerLog()
    with webhook_server() as hooks:
        (app / "skylift.toml").write_text(
            POLICY.format(url=hooks.url, function="pay", action="rollback = true")
        )
        with serve(str(app), options=["--quiet"], log=log) as url:
            invoke = f"{url}/2015-03-31/functions/pay/invocations"
            answers: list[httpx.Response] = []
            client = httpx.Client(timeout=30)
            with Loop(lambda: answers.append(client.post(invoke, json={}))):
                series_ready(url, "pay")
                write_pay(app, 'raise RuntimeError("a bad deploy")')
                page = eventually(lambda: hooks.to("/alice"), 60)[0]
                # Rolled back by itself: pay answers as the first version did.
                eventually(lambda: answers[-1].json() == {"v": 1}, 30)
            alert_id = page["alert"]["id"]
            assert "reloaded after a change to app.py" in log.text
            assert "rolled back pay to the code it ran before the last reload" in log.text
            assert f"(undo: skylift alerts undo {alert_id})" in log.text
            (action,) = actions_of(app, alert_id)
            assert action["action"] == "rollback" and action["undone_at"] is None
            assert client.post(invoke, json={}).json() == {"v": 1}

            undone = skylift("alerts", "undo", str(alert_id), str(app))
            assert undone.returncode == 0, undone.stderr
            assert undone.stdout.startswith(f"alert {alert_id}: pay serves its code loaded at ")
            back = client.post(invoke, json={})
            assert back.json()["errorMessage"] == "a bad deploy"
            assert "pay serves its reloaded code again (rollback undone)" in log.text
            again = skylift("alerts", "undo", str(alert_id), str(app))
            assert again.stdout.strip() == f"alert {alert_id} has no action left to undo"
            # The fix is an edit like any other: reloaded, served.
            write_pay(app, 'return {"v": 3}')
            eventually(lambda: client.post(invoke, json={}).json() == {"v": 3}, 30)
            client.close()


def successes(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "skylift_invocations_total"
                and sample.labels.get("function") == "worker"
                and sample.labels.get("outcome") == "success"
            ):
                return sample.value
    return 0.0


def mapping_state(url: str) -> str:
    found = httpx.get(
        f"{url}/2015-03-31/event-source-mappings/", params={"FunctionName": "worker"}, timeout=30
    ).json()["EventSourceMappings"]
    return str(found[0]["State"])


def test_a_failing_queue_worker_is_drained_and_undo_resumes_its_mapping(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(HERE / "drain_app.py", app / "app.py")
    log = ServerLog()
    with webhook_server() as hooks:
        (app / "skylift.toml").write_text(
            POLICY.format(url=hooks.url, function="worker", action='drain = "orders"')
        )
        with serve(str(app), options=["--quiet"], log=log) as url:
            client = Client(url)
            queue = client.queue_url("orders")

            def send(body: str = "ok") -> None:
                client.sqs("SendMessage", {"QueueUrl": queue, "MessageBody": body})

            with Loop(send):
                series_ready(url, "worker")
                assert mapping_state(url) == "Enabled"
                for _ in range(10):
                    send("fail")
                page = eventually(lambda: hooks.to("/alice"), 60)[0]
                eventually(lambda: mapping_state(url) == "Disabled", 10)
                # Paused: what is sent now waits in the queue, unread.
                time.sleep(0.5)  # an invocation under way when it paused finishes
                done = successes(url)
                time.sleep(1.0)
                assert successes(url) == done
                attributes = client.sqs(
                    "GetQueueAttributes",
                    {"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages"]},
                )["Attributes"]
                assert int(attributes["ApproximateNumberOfMessages"]) >= 20
            alert_id = page["alert"]["id"]
            assert "drained worker: paused its event source mapping on orders" in log.text
            (action,) = actions_of(app, alert_id)
            assert (action["action"], action["after"]) == ("drain", {"paused": ["orders"]})

            undone = skylift("alerts", "undo", str(alert_id), str(app))
            assert undone.returncode == 0, undone.stderr
            assert undone.stdout.strip() == (
                f"alert {alert_id}: worker polls orders again (its event source mapping is enabled)"
            )
            assert mapping_state(url) == "Enabled"
            eventually(lambda: successes(url) >= done + 20, 30)  # the backlog is read


def test_a_drain_of_a_queue_the_function_does_not_consume_stops_skylift_up(
    tmp_path: Path,
) -> None:
    shutil.copy(HERE / "drain_app.py", tmp_path / "app.py")
    (tmp_path / "skylift.toml").write_text(
        '[alerts]\n[[alerts.actions]]\nfunction = "worker"\ndrain = "refunds"\n'
    )
    done = skylift("up", str(tmp_path), "--port", "0", timeout=60)
    assert done.returncode == 2
    assert "drains refunds of function 'worker', which consumes orders" in done.stderr
