"""`skylift send`, `queues` and `redrive` on an app's state, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skylift.testing import serve

APP = """
from skylift import App

app = App()
app.declare_queue("jobs", visibility_timeout=60, dead_letter_queue="jobs-dlq",
                  max_receive_count=3)
app.declare_queue("orders.fifo", content_based_deduplication=True)
app.declare_bucket("uploads")


@app.function()
def noop(event, context):
    return None
"""


def skylift(*args: str, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def app(tmp_path: Path) -> str:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return str(tmp_path)


def table(app: str) -> dict[str, list[str]]:
    done = skylift("queues", app)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["QUEUE", "VISIBLE"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


def test_queue_commands_before_the_app_ever_ran(app):
    done = skylift("queues", app)
    assert done.returncode == 2
    assert "run `skylift up` once" in done.stderr


def test_send_then_list_then_redrive(app):
    with serve(app):
        pass  # the first start creates the declared queues
    sent = skylift("send", "jobs", "hello", app, "--attribute", "kind=demo")
    assert sent.returncode == 0, sent.stderr
    assert len(sent.stdout.strip()) == 36  # a message id
    assert skylift("send", "jobs", "-", app, stdin="from stdin").returncode == 0
    rows = table(app)
    assert rows["jobs"][:3] == ["2", "0", "0"]  # visible, in flight, delayed
    assert rows["jobs"][-2:] == ["jobs-dlq", "(0)"]
    assert rows["jobs-dlq"][0] == "0"

    assert skylift("send", "jobs-dlq", "parked", app).returncode == 0
    moved = skylift("redrive", "jobs-dlq", app, "--to", "jobs")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip() == "moved 1 message out of jobs-dlq"
    assert table(app)["jobs"][0] == "3"


def test_send_reports_what_is_wrong(app):
    with serve(app):
        pass
    unknown = skylift("send", "nope", "x", app)
    assert unknown.returncode == 2 and "QueueDoesNotExist" in unknown.stderr
    fifo = skylift("send", "orders.fifo", "x", app)  # no MessageGroupId
    assert fifo.returncode == 2 and "MessageGroupId" in fifo.stderr
    grouped = skylift("send", "orders.fifo", "x", app, "--group", "g1")
    assert grouped.returncode == 0, grouped.stderr
    bad_attribute = skylift("send", "jobs", "x", app, "--attribute", "novalue")
    assert bad_attribute.returncode == 2 and "NAME=VALUE" in bad_attribute.stderr


def test_put_get_and_async_invoke_find_the_apps_running_server(app, tmp_path):
    source = tmp_path / "report.csv"
    source.write_text("a,b\n1,2\n")
    # No server yet: said plainly, with what to do.
    missing = skylift("put", "uploads/in/report.csv", str(source), "--app", app)
    assert missing.returncode == 2
    assert "no skylift server is running for" in missing.stderr and "--url" in missing.stderr
    with serve(app):
        # Found through the app's .skylift/server.json: no --url needed.
        done = skylift("put", "uploads/in/report.csv", str(source), "--app", app)
        assert done.returncode == 0, done.stderr
        fetched = skylift("get", "uploads/in/report.csv", "--app", app)
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == "a,b\n1,2\n"
        queued = skylift("invoke", "noop", app, "--async")
        assert queued.returncode == 0, queued.stderr
        assert len(queued.stdout.strip()) == 36  # the request id
