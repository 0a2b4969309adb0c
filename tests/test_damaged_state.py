"""A damaged, emptied or lost database stops `skylift up` (and the queue commands) with a
message naming the file and how to recover; an app's queues are never silently replaced
by empty ones."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import boto3
import pytest

from skylift.testing import serve

APP = """
from skylift import App

app = App()
app.declare_queue("jobs")


@app.function()
def noop(event, context):
    return None
"""


def skylift(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def up_refuses(app: Path) -> str:
    """Run `skylift up`; it must exit at once, with a clear message and no traceback."""
    done = skylift("up", str(app), "--port", "0", "--quiet")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "serving on" not in done.stderr
    return done.stderr


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """An app that ran once and holds 300 messages in its queue."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    with serve(str(tmp_path), options=["--quiet"]) as url:
        sqs = boto3.client(
            "sqs",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        queue = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
        for start in range(0, 300, 10):
            entries = [{"Id": str(i), "MessageBody": "m" * 500} for i in range(start, start + 10)]
            sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    return tmp_path


def checkpoint(db: Path) -> None:
    """Copy the write-ahead log into the file, as SQLite does by itself every 1,000 pages."""
    with closing(sqlite3.connect(db)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as file:
        file.truncate(size)


def visible(app: Path) -> str:
    done = skylift("queues", str(app))
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[1].split()[1]


def test_a_first_start_lists_its_databases_in_the_marker(app):
    listed = (app / ".skylift" / "databases").read_text().split()
    assert "queues.db" in listed and "async.db" in listed
    assert visible(app) == "300"


def test_an_emptied_database_stops_the_start_and_reset_db_starts_it_empty(app):
    db = app / ".skylift" / "queues.db"
    truncate(db, 0)
    message = up_refuses(app)
    assert "queues.db is empty (0 bytes)" in message
    assert "skylift reset-db queues.db" in message and "cp BACKUP" in message
    assert db.stat().st_size == 0, "the damaged file must be left as it was"
    # The queue commands refuse it too, rather than showing an empty app.
    done = skylift("queues", str(app))
    assert done.returncode == 2 and "queues.db is empty" in done.stderr

    reset = skylift("reset-db", "queues.db", str(app))
    assert reset.returncode == 0, reset.stderr
    aside = [p.name for p in (app / ".skylift").iterdir() if ".set-aside-" in p.name]
    assert aside and all(name.startswith("queues.db.set-aside-") for name in aside)
    with serve(str(app), options=["--quiet"]):
        pass  # starts, with the declared queue created again (empty)
    assert visible(app) == "0"


def test_a_half_truncated_database_stops_the_start(app):
    db = app / ".skylift" / "queues.db"
    checkpoint(db)
    truncate(db, db.stat().st_size // 2)
    message = up_refuses(app)
    assert "queues.db is damaged" in message and "malformed" in message
    done = skylift("send", "jobs", "hello", str(app))
    assert done.returncode == 2 and "queues.db is damaged" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_database_cut_inside_its_first_page_stops_the_start(app):
    db = app / ".skylift" / "queues.db"
    checkpoint(db)
    truncate(db, 100)
    message = up_refuses(app)
    assert "queues.db is damaged" in message


def test_a_database_that_went_missing_stops_the_start(app):
    for suffix in ("", "-wal", "-shm"):
        Path(f"{app / '.skylift' / 'queues.db'}{suffix}").unlink(missing_ok=True)
    message = up_refuses(app)
    assert "queues.db is missing, but skylift created it here before" in message


def test_a_database_replaced_by_a_blank_one_stops_the_start(app):
    db = app / ".skylift" / "queues.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    sqlite3.connect(db).execute("PRAGMA journal_mode=WAL").fetchall()
    message = up_refuses(app)
    assert "queues.db holds no data any more" in message
